"""
C{twistd securetcp}: the command's options and service
(L{securetcp._twistd.tap}), C{--config} files (L{securetcp._twistd.config}),
the terminate/originate splice (L{securetcp._twistd.splice}) and worker
processes (L{securetcp._twistd.workers}, L{securetcp._twistd.worker}).
"""
