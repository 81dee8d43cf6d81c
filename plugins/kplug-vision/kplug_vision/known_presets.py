# ruff: noqa: E501  (a data table: one description per line)
"""The keras-hub presets kplug-vision's backbones know by name, as keras-hub 0.32 registers them.

``kplug presets`` lists them without importing keras-hub; a test checks every entry against
keras-hub's own registry (``keras_hub.models.Backbone.presets``), so a keras-hub upgrade that
moves a handle shows up there. Any other keras-hub handle (``kaggle://...``, ``hf://...``)
works in ``preset:`` too; this table is only what the listing shows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownPreset:
    """A keras-hub preset name, the backbone class it holds, its Kaggle handle and a description."""

    name: str
    class_name: str
    handle: str
    description: str


# kplug-vision backbone -> the keras-hub presets it loads
KNOWN_PRESETS: dict[str, tuple[KnownPreset, ...]] = {
    "resnet": (
        KnownPreset(
            "resnet_18_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnetv1/keras/resnet_18_imagenet/3",
            "18-layer ResNet model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_50_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnetv1/keras/resnet_50_imagenet/3",
            "50-layer ResNet model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_101_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnetv1/keras/resnet_101_imagenet/3",
            "101-layer ResNet model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_152_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnetv1/keras/resnet_152_imagenet/3",
            "152-layer ResNet model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_v2_50_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnetv2/keras/resnet_v2_50_imagenet/3",
            "50-layer ResNetV2 model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_v2_101_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnetv2/keras/resnet_v2_101_imagenet/3",
            "101-layer ResNetV2 model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_vd_18_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_18_imagenet/2",
            "18-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_vd_34_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_34_imagenet/2",
            "34-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_vd_50_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_50_imagenet/2",
            "50-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_vd_50_ssld_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_50_ssld_imagenet/2",
            "50-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution with knowledge distillation",
        ),
        KnownPreset(
            "resnet_vd_50_ssld_v2_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_50_ssld_v2_imagenet/2",
            "50-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution with knowledge distillation and AutoAugment",
        ),
        KnownPreset(
            "resnet_vd_50_ssld_v2_fix_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_50_ssld_v2_fix_imagenet/2",
            "50-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution with knowledge distillation, AutoAugment and additional fine-tuning of the classification head",
        ),
        KnownPreset(
            "resnet_vd_101_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_101_imagenet/2",
            "101-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_vd_101_ssld_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_101_ssld_imagenet/2",
            "101-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution with knowledge distillation",
        ),
        KnownPreset(
            "resnet_vd_152_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_152_imagenet/2",
            "152-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "resnet_vd_200_imagenet",
            "ResNetBackbone",
            "kaggle://keras/resnet_vd/keras/resnet_vd_200_imagenet/2",
            "200-layer ResNetVD (ResNet with bag of tricks) model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
    ),
    "vit": (
        KnownPreset(
            "vit_base_patch16_224_imagenet",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_base_patch16_224_imagenet/4",
            "ViT-B16 model pre-trained on the ImageNet 1k dataset with image resolution of 224x224 ",
        ),
        KnownPreset(
            "vit_base_patch16_384_imagenet",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_base_patch16_384_imagenet/4",
            "ViT-B16 model pre-trained on the ImageNet 1k dataset with image resolution of 384x384 ",
        ),
        KnownPreset(
            "vit_large_patch16_224_imagenet",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_large_patch16_224_imagenet/4",
            "ViT-L16 model pre-trained on the ImageNet 1k dataset with image resolution of 224x224 ",
        ),
        KnownPreset(
            "vit_large_patch16_384_imagenet",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_large_patch16_384_imagenet/4",
            "ViT-L16 model pre-trained on the ImageNet 1k dataset with image resolution of 384x384 ",
        ),
        KnownPreset(
            "vit_base_patch32_384_imagenet",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_base_patch32_384_imagenet/3",
            "ViT-B32 model pre-trained on the ImageNet 1k dataset with image resolution of 384x384 ",
        ),
        KnownPreset(
            "vit_large_patch32_384_imagenet",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_large_patch32_384_imagenet/3",
            "ViT-L32 model pre-trained on the ImageNet 1k dataset with image resolution of 384x384 ",
        ),
        KnownPreset(
            "vit_base_patch16_224_imagenet21k",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_base_patch16_224_imagenet21k/3",
            "ViT-B16 backbone pre-trained on the ImageNet 21k dataset with image resolution of 224x224 ",
        ),
        KnownPreset(
            "vit_base_patch32_224_imagenet21k",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_base_patch32_224_imagenet21k/3",
            "ViT-B32 backbone pre-trained on the ImageNet 21k dataset with image resolution of 224x224 ",
        ),
        KnownPreset(
            "vit_huge_patch14_224_imagenet21k",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_huge_patch14_224_imagenet21k/3",
            "ViT-H14 backbone pre-trained on the ImageNet 21k dataset with image resolution of 224x224 ",
        ),
        KnownPreset(
            "vit_large_patch16_224_imagenet21k",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_large_patch16_224_imagenet21k/3",
            "ViT-L16 backbone pre-trained on the ImageNet 21k dataset with image resolution of 224x224 ",
        ),
        KnownPreset(
            "vit_large_patch32_224_imagenet21k",
            "ViTBackbone",
            "kaggle://keras/vit/keras/vit_large_patch32_224_imagenet21k/3",
            "ViT-L32 backbone pre-trained on the ImageNet 21k dataset with image resolution of 224x224 ",
        ),
    ),
    "keras-hub": (
        KnownPreset(
            "csp_darknet_53_ra_imagenet",
            "CSPNetBackbone",
            "kaggle://keras/cspdarknet/keras/csp_darknet_53_ra_imagenet/2",
            "A CSP-DarkNet (Cross-Stage-Partial) image classification model pre-trained on the Randomly Augmented ImageNet 1k dataset at a 256x256 resolution",
        ),
        KnownPreset(
            "csp_resnext_50_ra_imagenet",
            "CSPNetBackbone",
            "kaggle://keras/cspdarknet/keras/csp_resnext_50_ra_imagenet/1",
            "A CSP-ResNeXt (Cross-Stage-Partial) image classification model pre-trained on the Randomly Augmented ImageNet 1k dataset at a 256x256 resolution",
        ),
        KnownPreset(
            "csp_resnet_50_ra_imagenet",
            "CSPNetBackbone",
            "kaggle://keras/cspdarknet/keras/csp_resnet_50_ra_imagenet/1",
            "A CSP-ResNet (Cross-Stage-Partial) image classification model pre-trained on the Randomly Augmented ImageNet 1k dataset at a 256x256 resolution",
        ),
        KnownPreset(
            "darknet_53_imagenet",
            "CSPNetBackbone",
            "kaggle://keras/cspdarknet/keras/darknet_53_imagenet/1",
            "A DarkNet image classification model pre-trained on theImageNet 1k dataset at a 256x256 resolution",
        ),
        KnownPreset(
            "densenet_121_imagenet",
            "DenseNetBackbone",
            "kaggle://keras/densenet/keras/densenet_121_imagenet/3",
            "121-layer DenseNet model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "densenet_169_imagenet",
            "DenseNetBackbone",
            "kaggle://keras/densenet/keras/densenet_169_imagenet/3",
            "169-layer DenseNet model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "densenet_201_imagenet",
            "DenseNetBackbone",
            "kaggle://keras/densenet/keras/densenet_201_imagenet/3",
            "201-layer DenseNet model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "efficientnet_b0_ra_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b0_ra_imagenet/2",
            "EfficientNet B0 model pre-trained on the ImageNet 1k dataset with RandAugment recipe",
        ),
        KnownPreset(
            "efficientnet_b0_ra4_e3600_r224_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b0_ra4_e3600_r224_imagenet/2",
            "EfficientNet B0 model pre-trained on the ImageNet 1k dataset by Ross Wightman",
        ),
        KnownPreset(
            "efficientnet_b1_ft_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b1_ft_imagenet/5",
            "EfficientNet B1 model fine-tuned on the ImageNet 1k dataset",
        ),
        KnownPreset(
            "efficientnet_b1_ra4_e3600_r240_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b1_ra4_e3600_r240_imagenet/2",
            "EfficientNet B1 model pre-trained on the ImageNet 1k dataset by Ross Wightman",
        ),
        KnownPreset(
            "efficientnet_b2_ra_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b2_ra_imagenet/2",
            "EfficientNet B2 model pre-trained on the ImageNet 1k dataset with RandAugment recipe",
        ),
        KnownPreset(
            "efficientnet_b3_ra2_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b3_ra2_imagenet/2",
            "EfficientNet B3 model pre-trained on the ImageNet 1k dataset with RandAugment2 recipe",
        ),
        KnownPreset(
            "efficientnet_b4_ra2_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b4_ra2_imagenet/2",
            "EfficientNet B4 model pre-trained on the ImageNet 1k dataset with RandAugment2 recipe",
        ),
        KnownPreset(
            "efficientnet_b5_sw_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b5_sw_imagenet/2",
            "EfficientNet B5 model pre-trained on the ImageNet 12k dataset by Ross Wightman",
        ),
        KnownPreset(
            "efficientnet_b5_sw_ft_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b5_sw_ft_imagenet/2",
            "EfficientNet B5 model pre-trained on the ImageNet 12k dataset and fine-tuned on ImageNet-1k by Ross Wightman",
        ),
        KnownPreset(
            "efficientnet_el_ra_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b1_ft_imagenet/5",
            "EfficientNet-EdgeTPU Large model trained on the ImageNet 1k dataset with RandAugment recipe",
        ),
        KnownPreset(
            "efficientnet_em_ra2_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b1_ft_imagenet/5",
            "EfficientNet-EdgeTPU Medium model trained on the ImageNet 1k dataset with RandAugment2 recipe",
        ),
        KnownPreset(
            "efficientnet_es_ra_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_b1_ft_imagenet/5",
            "EfficientNet-EdgeTPU Small model trained on the ImageNet 1k dataset with RandAugment recipe",
        ),
        KnownPreset(
            "efficientnet2_rw_m_agc_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet2_rw_m_agc_imagenet/2",
            "EfficientNet-v2 Medium model trained on the ImageNet 1k dataset with adaptive gradient clipping",
        ),
        KnownPreset(
            "efficientnet2_rw_s_ra2_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet2_rw_s_ra2_imagenet/2",
            "EfficientNet-v2 Small model trained on the ImageNet 1k dataset with RandAugment2 recipe",
        ),
        KnownPreset(
            "efficientnet2_rw_t_ra2_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet2_rw_t_ra2_imagenet/2",
            "EfficientNet-v2 Tiny model trained on the ImageNet 1k dataset with RandAugment2 recipe",
        ),
        KnownPreset(
            "efficientnet_lite0_ra_imagenet",
            "EfficientNetBackbone",
            "kaggle://keras/efficientnet/keras/efficientnet_lite0_ra_imagenet/2",
            "EfficientNet-Lite model fine-trained on the ImageNet 1k dataset with RandAugment recipe",
        ),
        KnownPreset(
            "mobilenet_v3_small_050_imagenet",
            "MobileNetBackbone",
            "kaggle://keras/mobilenetv3/keras/mobilenet_v3_small_050_imagenet/1",
            "Small Mobilenet V3 model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "mobilenet_v3_small_100_imagenet",
            "MobileNetBackbone",
            "kaggle://keras/mobilenetv3/keras/mobilenet_v3_small_100_imagenet/1",
            "Small Mobilenet V3 model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "mobilenet_v3_large_100_imagenet",
            "MobileNetBackbone",
            "kaggle://keras/mobilenetv3/keras/mobilenet_v3_large_100_imagenet/1",
            "Large Mobilenet V3 model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "mobilenet_v3_large_100_imagenet_21k",
            "MobileNetBackbone",
            "kaggle://keras/mobilenetv3/keras/mobilenet_v3_large_100_imagenet_21k/1",
            "Large Mobilenet V3 model pre-trained on the ImageNet 21k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "vgg_11_imagenet",
            "VGGBackbone",
            "kaggle://keras/vgg/keras/vgg_11_imagenet/3",
            "11-layer vgg model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "vgg_13_imagenet",
            "VGGBackbone",
            "kaggle://keras/vgg/keras/vgg_13_imagenet/3",
            "13-layer vgg model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "vgg_16_imagenet",
            "VGGBackbone",
            "kaggle://keras/vgg/keras/vgg_16_imagenet/3",
            "16-layer vgg model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "vgg_19_imagenet",
            "VGGBackbone",
            "kaggle://keras/vgg/keras/vgg_19_imagenet/3",
            "19-layer vgg model pre-trained on the ImageNet 1k dataset at a 224x224 resolution",
        ),
        KnownPreset(
            "xception_41_imagenet",
            "XceptionBackbone",
            "kaggle://keras/xception/keras/xception_41_imagenet/2",
            "41-layer Xception model pre-trained on ImageNet 1k",
        ),
    ),
}
