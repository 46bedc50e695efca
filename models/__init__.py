"""Worker-side models: a timm-style registry over the paper models (torch only).

    import models
    models.list_models()                       # ['binned_fcnn', 'cnn', ..., 'lenet_usgs', ..., 'transformer']
    net = models.create_model("lenet_usgs", num_classes=212, output="logits")
    net.output                                 # 'logits': what forward returns, picks the loss

Importing the model modules below registers them: TeaNet (MODELS.md part A: lenet_ir, lenet_usgs,
teanet_unet) and the HED comparison (part B: fcnn_1d, cnn, msresnet, lstm, transformer, sc_attention,
sct_attention, binned_fcnn; binary, ``output == "sigmoid"``).
"""

# Imported for their @register_model side effect.
from . import binned, hed_attention, hed_cnn, hed_fcnn, hed_sequence, lenet, unet  # noqa: F401
from .registry import count_parameters, create_model, list_models, model_kind, register_model

__all__ = ["count_parameters", "create_model", "list_models", "model_kind", "register_model"]
