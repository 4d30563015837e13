# -*- test-case-name: tests.test_proxyprotocol,tests.test_permissive -*-
"""
Layers under TLS, between the TCP transport and the TLS transport: the PROXY
protocol header (L{securetcp._below.proxyprotocol}) and permissive plaintext
sniffing (L{securetcp._below.permissive}).  A server endpoint stacks them
under its TLS factory, each auditing what it decides through a
L{securetcp._below._audit.PreTLSAudit}::

    audit = PreTLSAudit(sink, lambda: endpoint.policy, reactor)
    factory = ProxyHeaderFactory(SniffingFactory(tls, app, reactor, audit, 10),
                                 ("v2",), reactor, 10, audit)
"""
