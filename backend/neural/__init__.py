"""The neural refine engine: data preparation, networks, losses and training (PyTorch).

    enliven prepare VIDEOS_DIR --out DATASET_DIR      prepare.py   (no torch needed)
    enliven train DATASET_DIR --out RUN_DIR           train.py     (CPU, CUDA, or torchrun for DDP)
    enliven generate PHOTO ... --engine refine --checkpoint RUN_DIR/last.pt
                                                      enliven.engines.refine.RefineEngine

config.py         RefineConfig: every hyperparameter; presets "small" (CPU) and "large" (GPU)
dataset.py        PairDataset: (source, two neighbouring targets) -> warp output, field, masks, real frames
generator.py      Generator: U-Net, residual + blend mask over the warp
discriminator.py  MultiScaleDiscriminator: conditional multi-scale PatchGAN
vgg.py            VGG19 features built here; torchvision weights loaded from a file the user gives
losses.py         hinge / LS GAN, feature matching, L1, motion and temporal consistency
checkpoint.py     atomic save; load with weights_only=True only
inference.py      Refiner: a loaded generator applied to one frame's crop
commands.py       `enliven prepare` and `enliven train` on the command line

Only prepare.py and commands.py import without torch; everything else needs it.
"""
