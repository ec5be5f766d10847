"""Models registered in mmseg's ``MODELS``: :class:`SMPFPNHead`, the FPN decoder of
segmentation_models_pytorch 0.2.1 that the authors' released code trains."""

from .smp_fpn_head import SMPFPNHead, convert_smp_fpn_state_dict

__all__ = ["SMPFPNHead", "convert_smp_fpn_state_dict"]
