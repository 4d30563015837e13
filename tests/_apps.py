"""
Application factories that tests run behind a real C{twistd securetcp
serve} (or a configuration file's C{app}), by name::

    twistd -n securetcp serve --listen mtls:... --app tests._apps:echoFactory

C{echoFactory} answers every byte it receives with itself;
C{backendEchoFactory} answers C{LINE} with C{backend:LINE}, like the test
backend of L{tests._twistd}, so that a test sees which one answered.
"""

from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol


class _Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class _BackendEcho(Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"backend:" + data)


echoFactory = Factory.forProtocol(_Echo)
echoFactory.noisy = False
backendEchoFactory = Factory.forProtocol(_BackendEcho)
