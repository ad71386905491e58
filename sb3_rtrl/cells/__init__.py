"""Element-wise recurrent cells and the interface the RTRL engine reads from them."""

from sb3_rtrl.cells.base import ElementwiseRecurrentCell, RTRLTerms, SensitivitySpec
from sb3_rtrl.cells.elstm import ELSTMCell

__all__ = ["ELSTMCell", "ElementwiseRecurrentCell", "RTRLTerms", "SensitivitySpec"]
