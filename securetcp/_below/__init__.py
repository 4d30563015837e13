"""
Layers under TLS, between the TCP transport and the TLS transport: the PROXY
protocol header (L{securetcp._below.proxyprotocol}) and permissive plaintext
sniffing (L{securetcp._below.permissive}).
"""
