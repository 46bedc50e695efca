"""Worker-side models: a timm-style registry over the paper models (torch only).

    import models
    models.list_models()                       # ['lenet_ir', 'lenet_usgs', 'teanet_unet']
    net = models.create_model("lenet_usgs", num_classes=212, output="logits")
    net.output                                 # 'logits': what forward returns, picks the loss

Importing the model modules below registers them (MODELS.md part A).
"""

from . import lenet, unet  # noqa: F401  (imported for their @register_model side effect)
from .registry import count_parameters, create_model, list_models, model_kind, register_model

__all__ = ["count_parameters", "create_model", "list_models", "model_kind", "register_model"]
