"""
C{twistd securetcp}: the command line (L{securetcp._twistd.options}), the
service with its reload on SIGHUP and file changes
(L{securetcp._twistd.service}), building it from the options
(L{securetcp._twistd.tap}, the plugin's module), C{--config} files
(L{securetcp._twistd.config}), the terminate/originate splice
(L{securetcp._twistd.splice}) and worker processes
(L{securetcp._twistd.workers}, L{securetcp._twistd.worker}).
"""
