"""The paper's KINS training (main text Sec. 5.3, supplement Sec. 4): the PSPNet-ResNet-50 of the PSPNet
reference implementation (hszhao/semseg), 225x225 crops, batch 8, 200 epochs, wCE w = 0.9, "SGD and weight decay
as in the implementation". The values the paper leaves to that implementation are its Cityscapes PSPNet-50
defaults: learning rate 0.01, momentum 0.9, weight decay 1e-4, poly power 0.9, 10x on the new layers, scales
0.5-2.0, the auxiliary loss at 0.4 (`LossConfig.aux_weight`). No colour jitter (neither has one); the reference's
+-10 degree rotation and Gaussian blur are not implemented. The backbone starts from scratch unless ``pretrained``
gives converted ImageNet weights (``experiments.train`` warns): the paper fine-tunes an ImageNet ResNet-50."""

from oosis_jax.training.configs.base import TrainConfig, num_classes
from oosis_jax.training.input_pipeline import AugmentConfig
from oosis_jax.models import ModelConfig


def get_config() -> TrainConfig:
    return TrainConfig(
        name="kins", dataset="kins", model=ModelConfig.resnet50(num_classes("kins")),
        augment=AugmentConfig(crop_size=(225, 225), brightness=0.0, contrast=0.0, saturation=0.0),
        data_dir="~/tensorflow_datasets", batch_size=8, num_epochs=200.0, base_lr=0.01, eval_resolution=(615, 2048),
        eval_examples=200)
