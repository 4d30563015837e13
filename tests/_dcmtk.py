"""
dcmtk's command-line programs as real DICOM peers: where they are, skipping
a test without them, which TLS profiles the installed C{storescu} offers,
and a small DICOM file to send.

    needDcmtk()
    path = dicomFile(self.mktemp())
    process = PeerProcess.spawn([ECHOSCU, "-aet", "PUMP3", "127.0.0.1", str(port)])
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Optional

from twisted.trial.unittest import SkipTest

#: dcmtk's programs, or C{None} if not installed.
ECHOSCU: Optional[str] = shutil.which("echoscu")
STORESCU: Optional[str] = shutil.which("storescu")
STORESCP: Optional[str] = shutil.which("storescp")
DUMP2DCM: Optional[str] = shutil.which("dump2dcm")

#: The attributes of the file L{dicomFile} writes: a secondary capture
#: image with a made-up patient, whose name and ID tests can grep for.
PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "PID-4711-XYZ"

#: The A-ASSOCIATE-RQ dcmtk 3.6.7's C{echoscu -aet PUMP3 -aec PACS} sends,
#: recorded from the wire: one presentation context (Verification, two
#: transfer syntaxes), implementation class UID and version name.
ECHOSCU_RQ = bytes.fromhex(
    "0100000000cd000100005041435320202020202020202020202050554d503320"
    "2020202020202020202000000000000000000000000000000000000000000000"
    "0000000000000000000010000015312e322e3834302e31303030382e332e312e"
    "312e312000002e0100ff0030000011312e322e3834302e31303030382e312e31"
    "40000011312e322e3834302e31303030382e312e325000003a51000004000040"
    "005200001b312e322e3237362e302e373233303031302e332e302e332e362e37"
    "5500000f4f464649535f44434d544b5f333637")
_DUMP = (
    "(0008,0016) UI =SecondaryCaptureImageStorage\n"
    "(0008,0018) UI [1.2.826.0.1.3680043.2.1143.4711.1]\n"
    f"(0010,0010) PN [{PATIENT_NAME}]\n"
    f"(0010,0020) LO [{PATIENT_ID}]\n"
)


def needDcmtk() -> None:
    """
    Skip the calling test unless dcmtk's echoscu, storescu, storescp and
    dump2dcm are installed (Debian package C{dcmtk}).
    """
    if None in (ECHOSCU, STORESCU, STORESCP, DUMP2DCM):
        raise SkipTest("dcmtk (echoscu, storescu, storescp, dump2dcm) is not installed")


def dicomFile(directory: str) -> str:
    """
    Write a small DICOM file (with its meta header) under C{directory},
    made with dcmtk's C{dump2dcm}; return its path.
    """
    needDcmtk()
    assert DUMP2DCM is not None
    os.makedirs(directory, exist_ok=True)
    dump, path = os.path.join(directory, "image.dump"), os.path.join(directory, "image.dcm")
    with open(dump, "w") as f:
        f.write(_DUMP)
    subprocess.run([DUMP2DCM, "--write-xfer-little", dump, path], check=True,
                   capture_output=True, timeout=30)
    return path


@functools.cache
def storescuHelp() -> str:
    """
    The installed C{storescu}'s C{--help} text (its options depend on the
    version and on whether it was built with OpenSSL).
    """
    needDcmtk()
    assert STORESCU is not None
    done = subprocess.run([STORESCU, "--help"], capture_output=True, timeout=30)
    return done.stdout.decode("utf-8", "replace")
