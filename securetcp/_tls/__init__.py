"""
The only code that touches C{OpenSSL.SSL}: contexts built from a policy, the
verify step, and the TLS transport the gate sits on.  Nothing outside this
package imports C{OpenSSL}.
"""
