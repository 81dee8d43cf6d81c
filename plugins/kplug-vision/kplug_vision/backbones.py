"""Image backbones: ResNet and ViT from keras-hub; EfficientNet, MobileNetV3 and ConvNeXt from
keras.applications; any keras-hub image backbone from a keras-hub preset.

Every family is buildable at any size from its options (a named variant, or the
per-stage numbers directly), starts from random weights, or loads pretrained ones: a local
weights file or ``weights: imagenet`` (keras.applications families, through Keras' download
cache), or a keras-hub preset (``preset``: a local directory, a directory registered in
``KPLUG_PRESETS``, or a name/handle downloaded through keras-hub's cache when online).
Each returns one ``keras.Model`` with the preprocessing of ``kplug_vision.preprocessing``
in front of the network and global pooling after it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import keras
import pydantic
from kplug.plugin import CheckpointError, ConfigError

from kplug_vision import hub, imagenet
from kplug_vision.preprocessing import (
    Normalization,
    Scaling,
    attach,
    data_image_shape,
    image_size_pair,
    scaling,
)

ImageSize = int | list[int] | None

RESNET_DEPTHS = {
    18: ("basic_block", [2, 2, 2, 2]),
    34: ("basic_block", [3, 4, 6, 3]),
    50: ("bottleneck_block", [3, 4, 6, 3]),
    101: ("bottleneck_block", [3, 4, 23, 3]),
    152: ("bottleneck_block", [3, 8, 36, 3]),
}
# hidden_dim, num_layers, num_heads, mlp_dim (the ViT paper and DeiT sizes)
VIT_VARIANTS = {
    "tiny": (192, 12, 3, 768),
    "small": (384, 12, 6, 1536),
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
    "huge": (1280, 32, 16, 5120),
}
# width_coefficient, depth_coefficient, default image size
EFFICIENTNET_VARIANTS = {
    "b0": (1.0, 1.0, 224),
    "b1": (1.0, 1.1, 240),
    "b2": (1.1, 1.2, 260),
    "b3": (1.2, 1.4, 300),
    "b4": (1.4, 1.8, 380),
    "b5": (1.6, 2.2, 456),
    "b6": (1.8, 2.6, 528),
    "b7": (2.0, 3.1, 600),
}
CONVNEXT_VARIANTS = {
    "tiny": ([3, 3, 9, 3], [96, 192, 384, 768]),
    "small": ([3, 3, 27, 3], [96, 192, 384, 768]),
    "base": ([3, 3, 27, 3], [128, 256, 512, 1024]),
    "large": ([3, 3, 27, 3], [192, 384, 768, 1536]),
    "xlarge": ([3, 3, 27, 3], [256, 512, 1024, 2048]),
}


# -- shared -------------------------------------------------------------------


def load_weights_file(network: keras.Model, weights: str, family: str) -> None:
    """Load a local weights file (``.weights.h5`` or Keras 2 ``.h5``) into ``network``."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"weights = {weights!r}: no such file. Give a local weights file (.weights.h5 or .h5) saved "
            f"from a {family} network of the same architecture, or leave weights unset for random init."
        )
    try:
        network.load_weights(str(path))
    except Exception as error:  # Keras raises ValueError, KeyError, OSError... for a mismatch
        message = str(error).strip().splitlines()
        raise CheckpointError(
            f"weights = {weights!r}: cannot load it into this {family} network; check that the file was "
            f"saved from the same architecture and options ({type(error).__name__}: "
            f"{message[0] if message else ''})."
        ) from None


class Preset:
    """A keras-hub backbone from a ``preset:`` value, with its image converter's settings.

    The value is a local preset directory, a directory registered in ``KPLUG_PRESETS``, or a
    keras-hub preset name or handle (``kplug_vision.hub`` resolves it; downloads go through
    keras-hub's own caches).
    """

    def __init__(self, preset: str, expected: str | None = None) -> None:
        import keras_hub

        source = hub.resolve(preset, keras_hub.models.Backbone.presets)
        self.backbone = _from_preset(keras_hub.models.Backbone, source)
        found = type(self.backbone).__name__
        if expected is not None and found != expected:
            raise ConfigError(
                f"preset = {preset!r} holds a {found}, not a {expected}; use the keras-hub backbone "
                f"for other architectures."
            )
        self.image_size: tuple[int, int] | None = None
        self.scaling: Scaling | None = None
        self.scale: Any = None
        self.offset: Any = None
        converter = _image_converter(source)
        self.has_converter = converter is not None
        if converter is not None:
            if converter.image_size is not None:
                self.image_size = image_size_pair(list(converter.image_size))
            self.scale = converter.scale
            self.offset = converter.offset

    def converter_scaling(self, input_max: float) -> Scaling | None:
        """The preset's converter (which works on ``[0, 255]`` pixels) as a map from ``[0, input_max]``."""
        scale = 1.0 if self.scale is None else self.scale
        offset = 0.0 if self.offset is None else self.offset
        factor = 255.0 / input_max
        scale = tuple(factor * s for s in scale) if isinstance(scale, list | tuple) else factor * scale
        offset = tuple(offset) if isinstance(offset, list | tuple) else offset
        return Scaling(scale, offset)

    @property
    def channels(self) -> int:
        return int(self.backbone.input_shape[-1])


def _from_preset(cls: Any, source: hub.Source) -> Any:
    """``cls.from_preset`` of the resolved source; a failed download is an offline ``ConfigError``."""
    try:
        return cls.from_preset(source.target)
    except Exception as error:
        message = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {message[0] if message else ''}"
        if (
            source.location is None
            and isinstance(error, OSError)
            and not isinstance(error, FileNotFoundError)
        ):
            raise ConfigError(hub.offline_message(source.preset, str(source.handle), reason)) from None
        raise CheckpointError(f"preset = {source.preset!r}: keras-hub cannot load it ({reason}).") from None


def _image_converter(source: hub.Source) -> Any:
    """The preset's image converter, or ``None`` when it has none."""
    import keras_hub

    if source.location is not None:
        if not (source.location / "image_converter.json").is_file():
            return None
        return keras_hub.layers.ImageConverter.from_preset(str(source.location))
    try:
        return keras_hub.layers.ImageConverter.from_preset(source.target)
    except (FileNotFoundError, ValueError):
        return None


def _normalization(
    normalization: Normalization | None, default: Normalization, input_max: float, preset: Preset | None
) -> Scaling | None:
    if normalization is None and preset is not None and preset.has_converter:
        return preset.converter_scaling(input_max)
    return scaling(normalization or default, input_max)


def _network_size(input_shape: tuple[int, ...], image_size: ImageSize) -> tuple[int, int]:
    """The network's image size: ``image_size``, or the data's. Refuses a data shape no backbone
    takes before anything is built."""
    data_size = data_image_shape(input_shape)[:2]
    return image_size_pair(image_size) or data_size


@dataclass(frozen=True)
class Network:
    """What a family's builder returns: the bare network and how images reach it and leave it.

    Attributes:
        model: the network, from images to feature maps or token sequences.
        image_size: resize images to this size in front of it (``None``: keep the data's).
        normalization: the pixel scaling in front of it.
        pooling: how its output is pooled to one vector per image.
        channels: the channels it takes (grey images are repeated to three).
    """

    model: keras.Model
    image_size: tuple[int, int] | None
    normalization: Scaling | None
    pooling: str
    channels: int = 3

    def finish(self, name: str, input_shape: tuple[int, ...], weights: str | None) -> keras.Model:
        """Load ``weights`` into the network, then put preprocessing in front and pooling after it."""
        if weights is not None:
            load_weights_file(self.model, weights, name)
        self.model.name = name
        return attach(
            self.model,
            input_shape,
            channels=self.channels,
            image_size=self.image_size,
            normalization=self.normalization,
            pooling=self.pooling,
            name=name,
        )


# the name a network is built with -> the backbone's registered name, where they differ
FAMILIES = {"network": "keras-hub"}

WEIGHTS = inspect.Parameter("weights", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None")


def image_backbone(name: str) -> Callable[[Callable[..., Network]], Callable[..., keras.Model]]:
    """Turn a family's builder (options -> ``Network``) into its backbone factory.

    The factory takes the builder's options plus ``weights`` (a local weights file loaded
    into the network, or ``imagenet``: keras.applications' file for these options, from Keras'
    download cache) and does what every image backbone does after building its network:
    load the weights, name it ``name``, attach the preprocessing and the pooling.
    """

    def decorate(build: Callable[..., Network]) -> Callable[..., keras.Model]:
        signature = inspect.signature(build)

        @functools.wraps(build)
        def factory(*args: Any, weights: str | None = None, **options: Any) -> keras.Model:
            bound = signature.bind(*args, **options)
            if weights == imagenet.IMAGENET:
                bound.apply_defaults()
                weights = imagenet.weights_path(FAMILIES.get(name, name), dict(bound.arguments))
            return build(*args, **options).finish(name, bound.arguments["input_shape"], weights)

        factory.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), WEIGHTS], return_annotation="keras.Model"
        )
        factory.__annotations__ = {**build.__annotations__, "weights": "str | None", "return": "keras.Model"}
        return factory

    return decorate


# -- keras-hub families -----------------------------------------------------------


@image_backbone("resnet")
def resnet(
    input_shape: tuple[int, ...],
    depth: Literal[18, 34, 50, 101, 152] = 50,
    blocks: list[int] | None = None,
    filters: list[int] | None = None,
    strides: list[int] | None = None,
    block_type: Literal["basic_block", "bottleneck_block", "basic_block_vd", "bottleneck_block_vd"]
    | None = None,
    stem_filters: int = 64,
    pre_activation: bool = False,
    preset: str | None = None,
    image_size: ImageSize = None,
    input_max: float = 1.0,
    normalization: Normalization | None = None,
    pooling: Literal["avg", "max"] = "avg",
) -> Network:
    """ResNet (keras-hub ResNetBackbone) of any depth and width, with ImageNet preprocessing.

    Args:
        input_shape: one image's shape (supplied by kplug).
        depth: a standard ResNet (18, 34, 50, 101, 152); ``blocks`` overrides it.
        blocks: residual blocks per stage, e.g. ``[1, 1]`` for a tiny network.
        filters: filters per stage (keras-hub requires the first to be 64); default
            64, 128, 256, ... for as many stages as ``blocks``.
        strides: stride of each stage; default 1 then 2.
        block_type: basic or bottleneck blocks (``_vd`` variants: ResNet-D); default per depth.
        stem_filters: filters of the 7x7 stem convolution.
        pre_activation: ResNetV2-style pre-activation blocks.
        preset: a keras-hub ResNet preset: a local directory, a directory name registered in
            ``KPLUG_PRESETS``, or a keras-hub name/handle (``resnet_50_imagenet``,
            ``kaggle://...``, ``hf://...``); architecture and weights come from it (the options
            above are then ignored).
        weights: a local weights file saved from a network of the same options.
        image_size: resize images to this size (default: keep the data's size).
        input_max: the value of a white pixel in the data (1.0 for kplug's image readers).
        normalization: default ``imagenet`` (or the preset's image converter).
        pooling: global ``avg`` or ``max`` pooling of the last feature map.
    """
    loaded = Preset(preset, "ResNetBackbone") if preset else None
    if loaded is not None:
        network = loaded.backbone
    else:
        import keras_hub

        default_type, default_blocks = RESNET_DEPTHS[depth]
        blocks = list(blocks or default_blocks)
        stages = len(blocks)
        network = keras_hub.models.ResNetBackbone(
            input_conv_filters=[stem_filters],
            input_conv_kernel_sizes=[7],
            stackwise_num_filters=list(filters or [64 * 2**i for i in range(stages)]),
            stackwise_num_blocks=blocks,
            stackwise_num_strides=list(strides or [1] + [2] * (stages - 1)),
            block_type=block_type or default_type,
            use_pre_activation=pre_activation,
        )
    size = image_size_pair(image_size) or (loaded.image_size if loaded else None)
    return Network(
        network,
        size,
        _normalization(normalization, "imagenet", input_max, loaded),
        pooling,
    )


@image_backbone("vit")
def vit(
    input_shape: tuple[int, ...],
    variant: Literal["tiny", "small", "base", "large", "huge"] = "base",
    patch_size: int = 16,
    num_layers: int | None = None,
    num_heads: int | None = None,
    hidden_dim: int | None = None,
    mlp_dim: int | None = None,
    dropout: float = 0.0,
    preset: str | None = None,
    image_size: ImageSize = None,
    input_max: float = 1.0,
    normalization: Normalization | None = None,
    pooling: Literal["token", "mean"] = "token",
) -> Network:
    """Vision Transformer (keras-hub ViTBackbone) of any size, with ``[-1, 1]`` preprocessing.

    Args:
        input_shape: one image's shape (supplied by kplug).
        variant: tiny, small, base, large or huge; the four numbers below override it.
        patch_size: side of the square patches; the image size must be a multiple of it.
        num_layers: transformer blocks.
        num_heads: attention heads per block.
        hidden_dim: token width.
        mlp_dim: width of each block's MLP.
        dropout: dropout rate in the blocks.
        preset: a keras-hub ViT preset (a local or registered directory, or a keras-hub name
            such as ``vit_base_patch16_224_imagenet``); architecture and weights come from it.
        weights: a local weights file saved from a network of the same options.
        image_size: resize images to this size (default: the preset's, else the data's).
        input_max: the value of a white pixel in the data (1.0 for kplug's image readers).
        normalization: default ``inception`` (or the preset's image converter).
        pooling: the class ``token`` or the ``mean`` of all tokens.
    """
    loaded = Preset(preset, "ViTBackbone") if preset else None
    if loaded is not None:
        network = loaded.backbone
        size = image_size_pair(image_size) or loaded.image_size or tuple(network.input_shape[1:3])
    else:
        import keras_hub

        size = _network_size(input_shape, image_size)
        width, depth, heads, mlp = VIT_VARIANTS[variant]
        network = keras_hub.models.ViTBackbone(
            image_shape=(*size, 3),
            patch_size=patch_size,
            num_layers=num_layers or depth,
            num_heads=num_heads or heads,
            hidden_dim=hidden_dim or width,
            mlp_dim=mlp_dim or mlp,
            dropout_rate=dropout,
        )
    return Network(
        network,
        size,
        _normalization(normalization, "inception", input_max, loaded),
        pooling,
    )


@image_backbone("network")
def keras_hub_image(
    input_shape: tuple[int, ...],
    preset: str,
    image_size: ImageSize = None,
    input_max: float = 1.0,
    normalization: Normalization | None = None,
    pooling: Literal["avg", "max", "token", "mean"] = "avg",
) -> Network:
    """Any keras-hub image backbone (EfficientNet, MobileNet, DenseNet, CSPNet, ...) from a preset.

    Args:
        input_shape: one image's shape (supplied by kplug).
        preset: a keras-hub preset: a local or registered directory (config.json,
            model.weights.h5 and, when present, image_converter.json for image size and
            normalisation) or a keras-hub name/handle (``efficientnet_b0_ra_imagenet``).
        weights: a local weights file to load over the preset's.
        image_size: resize images to this size (default: the preset's image converter).
        input_max: the value of a white pixel in the data (1.0 for kplug's image readers).
        normalization: default: the preset's image converter, else ``imagenet``.
        pooling: ``avg``/``max`` for feature maps, ``token``/``mean`` for token sequences.
    """
    loaded = Preset(preset)
    return Network(
        loaded.backbone,
        image_size_pair(image_size) or loaded.image_size,
        _normalization(normalization, "imagenet", input_max, loaded),
        pooling,
        loaded.channels,
    )


# -- keras.applications families -------------------------------------------------------


@image_backbone("efficientnet")
def efficientnet(
    input_shape: tuple[int, ...],
    variant: Literal["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"] = "b0",
    width_coefficient: float | None = None,
    depth_coefficient: float | None = None,
    stages: Annotated[int, pydantic.Field(ge=1, le=7)] = 7,
    drop_connect_rate: float = 0.2,
    image_size: ImageSize = None,
    input_max: float = 1.0,
    normalization: Normalization = "bytes",
    pooling: Literal["avg", "max"] = "avg",
) -> Network:
    """EfficientNet (keras.applications) at any width and depth.

    The network normalises inside itself (its own Rescaling and Normalization layers,
    restored with ImageNet weights), so the default normalization hands it ``[0, 255]``.

    Args:
        input_shape: one image's shape (supplied by kplug).
        variant: b0 ... b7; ``width_coefficient``/``depth_coefficient`` override it.
        width_coefficient: channel multiplier (e.g. 0.25 for a tiny network).
        depth_coefficient: block-count multiplier.
        stages: keep only the first ``stages`` of the seven MBConv stages (fewer: smaller and
            shallower; pretrained files need all seven).
        drop_connect_rate: stochastic-depth rate.
        weights: ``imagenet`` (keras.applications' file for the variant, through Keras' download
            cache) or a local weights file (e.g. keras.applications' ``efficientnetb0_notop.h5``).
        image_size: resize images to this size (default: keep the data's; at least 32).
        input_max: the value of a white pixel in the data (1.0 for kplug's image readers).
        normalization: default ``bytes`` (see above).
        pooling: global ``avg`` or ``max`` pooling.
    """
    from keras.src.applications.efficientnet import DEFAULT_BLOCKS_ARGS, EfficientNet

    width, depth, _ = EFFICIENTNET_VARIANTS[variant]
    size = _network_size(input_shape, image_size)
    network = EfficientNet(
        width_coefficient or width,
        depth_coefficient or depth,
        default_size=size[0],
        drop_connect_rate=drop_connect_rate,
        blocks_args=[dict(block) for block in DEFAULT_BLOCKS_ARGS[:stages]],
        include_top=False,
        weights=None,
        input_shape=(*size, 3),
        name="efficientnet",
    )
    return Network(
        network,
        image_size_pair(image_size),
        scaling(normalization, input_max),
        pooling,
    )


@image_backbone("mobilenetv3")
def mobilenetv3(
    input_shape: tuple[int, ...],
    size: Literal["small", "large"] = "small",
    alpha: float = 1.0,
    minimalistic: bool = False,
    image_size: ImageSize = None,
    input_max: float = 1.0,
    normalization: Normalization = "inception",
    pooling: Literal["avg", "max"] = "avg",
) -> Network:
    """MobileNetV3 Small or Large (keras.applications) at any width multiplier.

    Args:
        input_shape: one image's shape (supplied by kplug).
        size: ``small`` or ``large``.
        alpha: width multiplier (0.25 ... 1.5; pretrained files exist for 0.75 and 1.0).
        minimalistic: the variant without squeeze-excite, hard-swish and 5x5 convolutions.
        weights: ``imagenet`` (alpha 0.75 or 1.0, through Keras' download cache) or a local
            weights file (e.g. keras.applications' ``..._no_top_v2.h5``).
        image_size: resize images to this size (default: keep the data's; at least 32).
        input_max: the value of a white pixel in the data (1.0 for kplug's image readers).
        normalization: default ``inception`` (``[-1, 1]``, as MobileNetV3 was trained).
        pooling: global ``avg`` or ``max`` pooling.
    """
    builder = keras.applications.MobileNetV3Small if size == "small" else keras.applications.MobileNetV3Large
    shape = _network_size(input_shape, image_size)
    network = builder(
        input_shape=(*shape, 3),
        alpha=alpha,
        minimalistic=minimalistic,
        include_top=False,
        weights=None,
        include_preprocessing=False,
        name=f"mobilenetv3{size}",
    )
    return Network(
        network,
        image_size_pair(image_size),
        scaling(normalization, input_max),
        pooling,
    )


@image_backbone("convnext")
def convnext(
    input_shape: tuple[int, ...],
    variant: Literal["tiny", "small", "base", "large", "xlarge"] = "tiny",
    depths: list[int] | None = None,
    projection_dims: list[int] | None = None,
    drop_path_rate: float = 0.0,
    layer_scale_init_value: float = 1e-6,
    image_size: ImageSize = None,
    input_max: float = 1.0,
    normalization: Normalization = "imagenet",
    pooling: Literal["avg", "max"] = "avg",
) -> Network:
    """ConvNeXt (keras.applications) at any depth and width.

    Args:
        input_shape: one image's shape (supplied by kplug).
        variant: tiny, small, base, large or xlarge; ``depths``/``projection_dims`` override it.
        depths: blocks in each of the four stages.
        projection_dims: channels of each of the four stages.
        drop_path_rate: stochastic-depth rate.
        layer_scale_init_value: initial layer-scale value.
        weights: ``imagenet`` (the variant's file, through Keras' download cache) or a local
            weights file (e.g. keras.applications' ``convnext_tiny_notop.h5``).
        image_size: resize images to this size (default: keep the data's; at least 32).
        input_max: the value of a white pixel in the data (1.0 for kplug's image readers).
        normalization: default ``imagenet``.
        pooling: global ``avg`` or ``max`` pooling.
    """
    from keras.src.applications.convnext import ConvNeXt

    default_depths, default_dims = CONVNEXT_VARIANTS[variant]
    size = _network_size(input_shape, image_size)
    network = ConvNeXt(
        depths=list(depths or default_depths),
        projection_dims=list(projection_dims or default_dims),
        drop_path_rate=drop_path_rate,
        layer_scale_init_value=layer_scale_init_value,
        default_size=size[0],
        name="convnext",
        include_preprocessing=False,
        include_top=False,
        weights=None,
        input_shape=(*size, 3),
    )
    return Network(
        network,
        image_size_pair(image_size),
        scaling(normalization, input_max),
        pooling,
    )


BACKBONES: dict[str, Any] = {
    "resnet": resnet,
    "vit": vit,
    "efficientnet": efficientnet,
    "mobilenetv3": mobilenetv3,
    "convnext": convnext,
    "keras-hub": keras_hub_image,
}
