"""
Tests for L{securetcp.protocols}: what every first-message reader shares.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from securetcp.protocols import MalformedMessage


class MalformedMessageTests(SynchronousTestCase):
    """
    L{MalformedMessage} names the protocol and the problem.
    """

    def test_fields(self) -> None:
        """
        The protocol and the problem are attributes and make up the text, so
        a caller can report them without parsing the message; it is a
        L{ValueError} like every other bad-input error.
        """
        error = MalformedMessage("dicom", "PDU type 0x07 is not A-ASSOCIATE-RQ")
        self.assertIsInstance(error, ValueError)
        self.assertEqual(error.protocol, "dicom")
        self.assertEqual(error.problem, "PDU type 0x07 is not A-ASSOCIATE-RQ")
        self.assertEqual(str(error), "dicom: PDU type 0x07 is not A-ASSOCIATE-RQ")
