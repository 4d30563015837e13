# -*- test-case-name: tests.test_materials,tests.test_verify,tests.test_fences -*-
"""
The only code that touches C{OpenSSL}: contexts built from (policy, role,
materials) with no I/O and the connection creators (L{context}), the verify
step (L{verify}), what a connection negotiated or why it failed
(L{session}), the CLI's probe (L{probe}), and the two fences around private
names: pyOpenSSL's binding (L{_binding}) and Twisted's TLS transport
(L{_halfclose}).  Nothing outside this package imports C{OpenSSL}.

    creator = ServerConnectionCreator(policy, loadMaterials(policy, Role.SERVER))
"""
