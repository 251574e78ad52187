"""Training objectives: pixel L1, SSIM, VGG features, Contrastive Prompt Regularization (CPR) and the SPN loss."""

from cplir.losses.contrastive_prompt import ContrastivePromptLoss
from cplir.losses.model_contrastive import ModelContrastiveLoss
from cplir.losses.pixel import l1_loss
from cplir.losses.ssim import ssim_loss
from cplir.losses.vgg import VGGFeatures, find_vgg_weights

__all__ = ["ContrastivePromptLoss", "ModelContrastiveLoss", "VGGFeatures", "find_vgg_weights", "l1_loss", "ssim_loss"]
