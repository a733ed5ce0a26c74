"""Every configuration key with its default, in one place.

Experiment YAMLs in ``configs/`` override these defaults; command-line ``KEY VALUE`` pairs override
the YAML. ``get_cfg`` returns a frozen node. Library code never reads this module's globals: entry
points build objects from the returned config and pass plain arguments down.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from yacs.config import CfgNode as CN

from lib.errors import UserError

_C = CN()
_C._BASE_ = ""  # a YAML may name another YAML (relative path) whose values it overrides

_C.EXPERIMENT = "default"  # name of the output folder: OUTPUT_DIR/<EXPERIMENT>/<timestamp>/
_C.OUTPUT_DIR = "output"
_C.SEED = 123
_C.DEVICE = "auto"  # 'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1', ...
_C.STAGE = "mesh"  # 'pose': stage 1, the pose stream alone; 'mesh': stage 2, the full PMCE

# ---------------------------------------------------------------------------------------------------
# Body model files. Users put their licensed SMPL files and the official base data here; the
# generated SMPL-format body is written to the same layout.
# ---------------------------------------------------------------------------------------------------
_C.BODY = CN()
_C.BODY.SMPL_DIR = "data/body_models/smpl"  # SMPL_{NEUTRAL,MALE,FEMALE}.pkl or basicModel_*.pkl
_C.BODY.GENDERS = ["neutral", "male", "female"]  # SMPL layers to load; datasets with gendered GT need all
_C.BODY.MEAN_VERTICES = "data/base_data/smpl_mean_vertices.npy"  # (6890, 3) template
_C.BODY.MESH_DOWNSAMPLING = "data/base_data/mesh_downsampling.npz"  # GraphCMR A/U/D, 6890->1723->431
_C.BODY.J_REGRESSOR_H36M = "data/base_data/J_regressor_h36m_correct.npy"  # (17, 6890)
_C.BODY.J_REGRESSOR_COCO = "data/base_data/J_regressor_coco.npy"  # (17, 6890)

# ---------------------------------------------------------------------------------------------------
# Network. Defaults reproduce the official checkpoints (3DPW / COCO-19 setting).
# ---------------------------------------------------------------------------------------------------
_C.MODEL = CN()
_C.MODEL.INPUT_JOINT_SET = "coco19"  # 'coco19' (COCO-17 + pelvis + neck) or 'h36m17'
_C.MODEL.SEQ_LEN = 16  # T, frames per input window
_C.MODEL.TARGET_INDEX = -1  # frame of the window that is predicted; -1 means the middle, T // 2
_C.MODEL.IMG_FEAT_DIM = 2048  # per-frame image feature size (SPIN ResNet-50 pooled features)

_C.MODEL.POSE_STREAM = CN()  # spatial-temporal transformer: 2D pose sequence -> mid-frame 3D pose
_C.MODEL.POSE_STREAM.DIM = 256  # C1
_C.MODEL.POSE_STREAM.DEPTH = 3  # L1, spatial + temporal block pairs
_C.MODEL.POSE_STREAM.HEADS = 8
_C.MODEL.POSE_STREAM.MLP_RATIO = 2.0
_C.MODEL.POSE_STREAM.DROP_PATH = 0.2  # stochastic depth, linearly increasing from 0 over depth
_C.MODEL.POSE_STREAM.USE_IMG_FEAT = True  # add each frame's image feature to its joint tokens (Table 4)
# Metres per unit of the regression head's output. The official head is trained in millimetres (0.001),
# which official checkpoints need; 1.0 lets a model trained from scratch reach metre-scale poses much
# sooner (Adam moves weights by ~lr per step, so a mm-scale head needs ~1000x larger weights).
_C.MODEL.POSE_STREAM.OUTPUT_SCALE = 0.001
# What the joint embedding sees. 'screen' (official): the 2D pose as given, normalised by the full frame
# (paper eq. 5), so the network itself must learn to ignore where and how large the person is.
# 'root_scale': each frame's pose minus its pelvis, divided by the window's mean joint-to-pelvis distance;
# root-relative 3D targets do not depend on either, and a model trained from scratch learns much sooner.
# 'window_root_scale': the same but every frame minus the middle frame's pelvis, so the pelvis track
# within the window (e.g. the walking direction, a cue to where the body faces) stays visible.
_C.MODEL.POSE_STREAM.INPUT_NORM = "screen"
# Std of the (truncated normal) initial spatial and temporal position embeddings; 0 = zeros (official).
# From zeros the joint tokens start indistinguishable but for their coordinates and a model trained
# from scratch plateaus for ~600 steps; measured on the synthetic data (stage 1, 8 epochs): validation
# MPJPE 91.9 mm with zeros, 81.0 with 0.5. Loading a checkpoint overwrites the embeddings either way.
_C.MODEL.POSE_STREAM.POS_EMBED_STD = 0.0

_C.MODEL.IMAGE_STREAM = CN()  # bidirectional GRU over the per-frame image features
_C.MODEL.IMAGE_STREAM.HIDDEN = 1024
_C.MODEL.IMAGE_STREAM.LAYERS = 2

_C.MODEL.DECODER = CN()  # co-evolution decoder + mesh upsampler
_C.MODEL.DECODER.JOINT_DIM = 64  # C2 for joint tokens
_C.MODEL.DECODER.VERTEX_DIM = 64  # C2 for vertex tokens
_C.MODEL.DECODER.NUM_BLOCKS = 3  # L2
_C.MODEL.DECODER.JOINT_HEADS = 8
_C.MODEL.DECODER.VERTEX_HEADS = 2
_C.MODEL.DECODER.MLP_RATIO = 4.0
_C.MODEL.DECODER.DROP_PATH = 0.2  # on every residual branch
# 'original': every block is fed the pose-stream joints (official); 'chained': block i+1 gets block i's joints
_C.MODEL.DECODER.JOINT_INPUT = "original"
# Coarse-mesh initialisation (Table 9): 'nearest_joint' (official), 'template' or 'zeros'
_C.MODEL.DECODER.INIT = "nearest_joint"
# Joint set on which each coarse vertex's nearest joint is computed. 'h36m17' reproduces the official
# code, which gathers those H36M-17 indices from the input joints even when they are COCO-19;
# 'input' uses the input joint set itself (semantically correct, but not what official checkpoints learned).
_C.MODEL.DECODER.NEAREST_JOINT_SET = "h36m17"
# Conditioning normalisation (Table 5): 'adaln_official' (unbiased std, eps on std, gamma without +1),
# 'adaln' ((1 + gamma), eps on the variance) or 'layernorm' (no image conditioning)
_C.MODEL.DECODER.NORM = "adaln_official"
# Pose-mesh interactions (Table 5): 'both', 'pose_to_mesh', 'mesh_to_pose' or 'none'
_C.MODEL.DECODER.INTERACTION = "both"
_C.MODEL.DECODER.USE_IMG_FEAT = True  # image feature in the decoder: AdaLN + vertex residual heads (Table 4)
# 431 -> 6890 upsampling: 'conv' (learned Conv1d, official) or 'matrix' (fixed GraphCMR U matrices)
_C.MODEL.DECODER.UPSAMPLE = "conv"
# Initial output layers: 'official' (PyTorch defaults: the learned upsampler and the vertex residual heads
# start as random maps, i.e. a mesh of ~0.3 m noise) or 'upsampling' (the Conv1d's centre tap starts as
# the fixed U matrices and the residual heads at zero, so the first mesh is the upsampled coarse mesh).
_C.MODEL.DECODER.OUTPUT_INIT = "official"
# AdaLN scale / shift layers at the start: 'default' (PyTorch's random init, official) or 'zero' (not with
# NORM adaln_official: the decoder starts as its LayerNorm twin and the image conditioning grows from 0).
_C.MODEL.DECODER.COND_INIT = "default"

# Stage 2 starts from a stage-1 checkpoint (ours or the official pose_*.pth.tar); '' = random init.
_C.MODEL.POSE_CHECKPOINT = ""

# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------
_C.DATA = CN()
_C.DATA.ROOT = "data"
_C.DATA.TRAIN_LIST = ["synthetic"]  # datasets mixed for training
_C.DATA.TRAIN_RATIOS = [1.0]  # sampling ratio of each training dataset
_C.DATA.VAL_LIST = ["synthetic"]
_C.DATA.TEST_LIST = ["synthetic"]
# Joint set regressed from meshes for the mesh->joint loss and the metrics: 'h36m17' or 'coco19'
_C.DATA.TARGET_JOINT_SET = "h36m17"
# 2D input: 'gt', 'gt_noise', 'fit' / 'fit_noise' (COCO: the projected SMPLify fit, the official input with
# noise) or a named detection ('vitpose', 'cpn', 'official_noise': the official precomputed noisy 2D, ...)
_C.DATA.DETECTOR = "gt_noise"
_C.DATA.STRIDE = 1  # window stride in frames
# Per-dataset stride of the 'train' split overriding DATA.STRIDE: ["dataset=stride", ...], e.g. ["h36m=16"]
_C.DATA.STRIDES = []
_C.DATA.PAD_MODE = "replicate"  # at video ends: "replicate" or "reflect" padding, or "official" (no padding)
_C.DATA.WORKERS = 2
_C.DATA.EPOCH_LENGTH = 0  # training samples per epoch over all ranks, mixed by TRAIN_RATIOS; 0: sum of sizes
_C.DATA.MAX_FRAME_GAP = 1  # a frame-id jump above this (in the dataset's frame step) splits a video
# Dataset folders in the official preprocessed layout (lib/data/datasets/<name>.py documents the files)
_C.DATA.PW3D_DIR = "data/PW3D/pw3d_data"  # 3DPW: 3DPW_latest_{train,validation,test}.json, ...
_C.DATA.H36M_DIR = "data/Human36M/h36m_data"  # Human3.6M: annotations/Human36M_subject*_*.json, ...
_C.DATA.MPII3D_DIR = "data/MPII3D/mpii3d_data"  # MPI-INF-3DHP: MPI-INF-3DHP.json, mpii3d_*_scale12_db.pt
_C.DATA.COCO_DIR = "data/COCO/coco_data"  # COCO: annotations/person_keypoints_train2014.json, ...
_C.DATA.MPII_DIR = "data/MPII/mpii_data"  # MPII: train.json, MPII_train_SMPL_NeuralAnnot.json, ...
_C.DATA.CACHE_DIR = "data/cache"  # ground-truth meshes computed once per dataset split (memory-mapped .npy)
_C.DATA.MESH_CACHE_DTYPE = "float32"  # storage of the cached meshes: 'float32' or 'float16'
# Per-dataset detector overriding DATA.DETECTOR: ["dataset=detector", ...], e.g. ["3dpw=vitpose"]
_C.DATA.DETECTORS = []
# User detection files in COCO keypoint-result format: ["dataset:split:name:path", ...]
_C.DATA.DETECTION_FILES = []
_C.DATA.MISSING_FEATURES = "error"  # a frame without an image feature: 'error' (fail) or 'drop' (skip it)
# COCO / MPI-INF-3DHP training samples lose every target when their 2D fit (COCO: the SMPLify fit's
# projection; MPI-INF-3DHP: the precomputed noisy 2D) is further than this from the ground-truth keypoints,
# in units of a 64x64 box around the person (official 3.0, I2L-MeshNet); <= 0 disables the check
_C.DATA.FIT_ERROR_MAX = 3.0
# Human3.6M subjects per split (Protocol 2 tests on S9, S11; S8 is held out for validation)
_C.DATA.H36M_TRAIN_SUBJECTS = [1, 5, 6, 7]
_C.DATA.H36M_VAL_SUBJECTS = [8]
_C.DATA.H36M_TEST_SUBJECTS = [9, 11]
_C.DATA.VAL_FRACTION = 0.05  # videos held out as 'val' for datasets without a validation split (hashed ids)

# Synthetic 2D detection noise ('gt_noise'), redrawn every epoch from (SEED, epoch, sample). Lengths are
# fractions of the person's size (the larger side of the box around its 2D keypoints), so the same
# settings hold for pixel and normalised keypoints. See lib/data/noise.py; check with scripts/noise_stats.py.
# Validation / test noise ('gt_noise'): 'video' draws it once per video, so every window sees the same
# noisy frames as with a real detector; 'window' draws it per window (the training draw; then consecutive
# outputs jitter independently and ACCEL measures the noise draws rather than the model).
_C.DATA.EVAL_NOISE = "video"
# Training noise: 'window' draws it per window and epoch (most variety, the official sampling); 'video' once
# per video and epoch, so that a TEMPORAL_GROUP's consecutive windows see the same noisy frames as at test
# time (with per-window draws the acceleration loss asks for outputs that ignore the input's noise).
_C.DATA.TRAIN_NOISE = "window"
# Training samples of this many consecutive windows (targets t-1, t, t+1 for 3), for LOSS.ACCEL_WEIGHT;
# TRAIN.BATCH_SIZE and DATA.EPOCH_LENGTH then count groups. 1: single windows (the official sampling).
_C.DATA.TEMPORAL_GROUP = 1
# Share of the training samples that are such groups (redrawn every epoch); the rest are single windows, so
# that more distinct positions are seen in the same time (all groups cost ~10 mm PVE in make run's time).
_C.DATA.TEMPORAL_GROUP_SHARE = 1.0
_C.DATA.NOISE = CN()
_C.DATA.NOISE.JOINT_SET = "coco17"  # joints the detector outputs; coco19's pelvis / neck are derived after
_C.DATA.NOISE.STD = 0.02  # base std per coordinate of the Gaussian error (jitter + drift)
# Per-joint std multipliers, one per joint of JOINT_SET; [] uses the COCO keypoint (OKS) sigmas / their mean
_C.DATA.NOISE.JOINT_STD_MULT = []
_C.DATA.NOISE.JITTER_CORR = 0.6  # lag-1 autocorrelation of the per-joint AR(1) jitter
_C.DATA.NOISE.DRIFT_SHARE = 0.3  # fraction of the variance in a slow AR(1) offset shared by all joints
_C.DATA.NOISE.DRIFT_CORR = 0.98  # lag-1 autocorrelation of the drift
_C.DATA.NOISE.SWAP_PROB = 0.01  # fraction of frames in which a left/right joint pair is swapped
_C.DATA.NOISE.SWAP_LEN = 3.0  # mean length of a swap, frames
_C.DATA.NOISE.MISS_PROB = 0.02  # fraction of joint-frames missed (visible = False, last position held)
_C.DATA.NOISE.MISS_LEN = 4.0  # mean length of a miss, frames
_C.DATA.NOISE.OUTLIER_PROB = 0.005  # fraction of joint-frames replaced by a gross error
_C.DATA.NOISE.OUTLIER_STD = 0.25  # std per coordinate of a gross error
_C.DATA.NOISE.OUTLIER_LEN = 1.5  # mean length of an outlier, frames
# Per-joint systematic offset of the detector's joints from the body's: (up, out) per joint, flattened,
# fractions of the person size along the torso and away from the joint's left/right partner; []: none.
# scripts/fit_noise.py measures all DATA.NOISE values from render-and-detect data.
_C.DATA.NOISE.JOINT_BIAS = []
# The noise of frames where the body is turned away from upright (lying, crawling, inverted, mid-flip),
# with DATA.NOISE's keys (its JOINT_SET); DATA.NOISE stays the noise of the upright frames. Detectors err far
# more on turned bodies (docs/synthetic_data.md); `scripts/fit_noise.py --frames turned` fits this block.
_C.DATA.TURNED_NOISE = _C.DATA.NOISE.clone()
del _C.DATA.TURNED_NOISE["JOINT_SET"]
_C.DATA.TURNED_NOISE.ENABLED = False  # False: DATA.NOISE on every frame
_C.DATA.TURNED_NOISE.MIN_TILT_DEG = 60.0  # torso angle from the image's up from which a frame counts turned

# The embedded synthetic video dataset, written in the 3DPW file format (scripts/make_synthetic_data.py,
# lib/data/synthetic/). Its image features are silhouette features (lib/data/silhouette.py), not SPIN's.
_C.DATA.SYNTHETIC = CN()
_C.DATA.SYNTHETIC.DIR = "data/synthetic/pw3d_data"  # output folder, 3DPW file names
_C.DATA.SYNTHETIC.SEED = 0  # the whole dataset is a pure function of the seed and these settings
# Videos in 'train', 'validation', 'test'. Training data is what the CPU-sized model lacks most: 480
# instead of 240 training videos took stage-1 test MPJPE from 77.9 to 66.7 mm in the same 1,504 steps.
_C.DATA.SYNTHETIC.NUM_SEQUENCES = [480, 12, 32]
_C.DATA.SYNTHETIC.SEQ_LEN_RANGE = [30, 50]  # frames per video, drawn uniformly (inclusive)
_C.DATA.SYNTHETIC.FPS = 30.0  # frame rate of the motions
_C.DATA.SYNTHETIC.IMAGE_SIZES = ["1920x1080", "1080x1920", "1000x1000"]  # WIDTHxHEIGHT, drawn per video
_C.DATA.SYNTHETIC.FOV_RANGE = [40.0, 70.0]  # degrees of field of view across the longer image side
_C.DATA.SYNTHETIC.FILL_RANGE = [0.45, 0.9]  # fraction of the image height the standing person fills
_C.DATA.SYNTHETIC.MOVING_CAMERA_PROB = 0.3  # fraction of videos filmed by an orbiting, shaking camera
_C.DATA.SYNTHETIC.BETA_STD = 1.0  # std of the random SMPL shape coefficients
_C.DATA.SYNTHETIC.BETA_MAX = 2.5  # |beta| clip
_C.DATA.SYNTHETIC.OCCLUSION_MARGIN = 0.12  # metres of surface in front of a joint before it counts hidden
_C.DATA.SYNTHETIC.CROP_SIZE = 128  # pixels of the square silhouette crop the features are computed on
_C.DATA.SYNTHETIC.CROP_SCALE = 1.2  # crop side / larger side of the 2D keypoint box
_C.DATA.SYNTHETIC.MASK_BLUR = 0.02  # max blur std of the silhouette, fraction of the crop side
_C.DATA.SYNTHETIC.MASK_HOLES = 1.0  # mean number of holes per silhouette
_C.DATA.SYNTHETIC.MASK_HOLE_SIZE = 0.05  # max hole radius, fraction of the crop side
_C.DATA.SYNTHETIC.MASK_DILATE = 0.03  # max clothing-like dilation (per video), fraction of the crop side
_C.DATA.SYNTHETIC.OCCLUDER_PROB = 0.3  # fraction of videos with an occluding box in front of the person
_C.DATA.SYNTHETIC.FEAT_DECIMALS = 4  # decimals of the image features written to JSON (file size)
# >= 0: the first 160 features are replaced by an emulated backbone shape estimate (betas 1-9 plus
# per-frame noise of this std, and the gender; lib.data.synthetic.generate.shape_code), for the Table-4
# experiment (configs/synthetic_*_shape_code.yaml). Off (-1) by default: no real video has it, so the
# demo cannot.
_C.DATA.SYNTHETIC.SHAPE_CODE_NOISE = -1.0
# 2D inputs and person masks: 'noise' (the detection-noise model on the true 2D, fast) or 'blazepose'
# (render-and-detect: every video rendered over BACKGROUND_VIDEO's frames and run through the demo's
# people backend, DEMO.BLAZEPOSE_DIR; about 0.1 s a frame; docs/synthetic_data.md)
_C.DATA.SYNTHETIC.DETECTOR = "noise"
# Share of the lower-body actions that are flips, cartwheels, crawling, lying, kicks or punches
# (lib/data/synthetic/motion.py ACROBATICS); 0: the upright repertoire only.
_C.DATA.SYNTHETIC.ACROBATICS = 0.0
# Share of the upper-body actions that move every limb and the trunk freely through their ranges
# (motion.py _free: dance-, sport- and get-up-like limb combinations); 0: the scripted actions only.
_C.DATA.SYNTHETIC.FREE_LIMBS = 0.0
# Share of the lower-body actions that are runs, spins (and spin kicks), side kicks, get-ups from the floor
# or dances (motion.py ATHLETICS); ACROBATICS + ATHLETICS <= 1; 0: none.
_C.DATA.SYNTHETIC.ATHLETICS = 0.0
_C.DATA.SYNTHETIC.BACKGROUND_VIDEO = "data/demo/sports2d_demo.mp4"  # scripts/fetch_assets.py
# Test splits beside the synthetic one, in the same format: the synthetic test videos rendered and detected
# ('synthetic_rendered'), and real motion capture rendered and detected ('real_motion'; never trained on).
_C.DATA.SYNTHETIC.RENDERED_DIR = "data/synthetic_rendered/pw3d_data"
_C.DATA.SYNTHETIC.REAL_MOTION_DIR = "data/real_motion/pw3d_data"
_C.DATA.SYNTHETIC.MOCAP_DIR = "data/mocap/deepmimic"  # DeepMimic's clips (scripts/fetch_mocap.py)
_C.DATA.SYNTHETIC.REAL_MOTION_IMAGE_SIZE = "1280x720"  # one size for the real-motion videos
_C.DATA.SYNTHETIC.WORKERS = 2  # processes generating videos in parallel (1: in-process)

# ---------------------------------------------------------------------------------------------------
# Training (losses in metres)
# ---------------------------------------------------------------------------------------------------
_C.TRAIN = CN()
_C.TRAIN.BATCH_SIZE = 32
_C.TRAIN.EPOCHS = 20
_C.TRAIN.OPTIMIZER = "adam"  # 'adam' or 'adamw'
_C.TRAIN.LR = 5e-5
_C.TRAIN.WEIGHT_DECAY = 0.0
_C.TRAIN.SCHEDULER = "step"  # 'step' (multi-step) or 'cosine'
_C.TRAIN.LR_STEPS = [2, 4, 6, 8, 10, 12, 15]  # epochs at which the learning rate is multiplied by LR_FACTOR
_C.TRAIN.LR_FACTOR = 0.9
_C.TRAIN.WARMUP_EPOCHS = 0
_C.TRAIN.GRAD_CLIP = 0.0  # max gradient norm; 0 disables clipping
_C.TRAIN.AMP = "none"  # 'none', 'bf16' (GPU or CPU) or 'fp16' (GPU only)
_C.TRAIN.EDGE_LOSS_START = 2  # the edge-length loss is added after this epoch
_C.TRAIN.VAL_EVERY = 1  # epochs between validations, and after the last epoch (0: never)
_C.TRAIN.SAVE_EVERY = 5  # epochs between kept epoch_NNN.pth checkpoints (0: never)
_C.TRAIN.CHECKPOINT_EVERY_ITERS = 0  # also refresh last.pth every N steps (0: at epoch ends only)
_C.TRAIN.STOP_AFTER_ITERS = 0  # stop resumably after N steps in total (time-boxed jobs; 0: no limit)
_C.TRAIN.LOG_EVERY = 20  # steps between logged training scalars
_C.TRAIN.DETERMINISTIC = True  # deterministic algorithms (bitwise-reproducible on CPU)
# Consecutive steps with a non-finite loss or gradient that are skipped (no update) with a warning; one
# more stops the run (exit code 2). A checkpoint with non-finite weights is never written.
_C.TRAIN.MAX_NONFINITE_STEPS = 3

_C.LOSS = CN()
_C.LOSS.POSE_WEIGHT = 1.0  # stage 1: L1 on the mid-frame 3D pose
_C.LOSS.MESH_WEIGHT = 1.0  # lambda_m
_C.LOSS.JOINT_WEIGHT = 1.0  # lambda_j (the official 1e-3 on millimetres, expressed in metres)
_C.LOSS.NORMAL_WEIGHT = 0.1  # lambda_n
_C.LOSS.EDGE_WEIGHT = 20.0  # lambda_e
# Acceleration of consecutive targets (needs DATA.TEMPORAL_GROUP >= 3): L1 between the second
# differences of the predicted and true meshes (stage 2) or poses (stage 1); 0: off (official).
_C.LOSS.ACCEL_WEIGHT = 0.0

# ---------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------
_C.EVAL = CN()
_C.EVAL.BATCH_SIZE = 64
_C.EVAL.PROTOCOL = "full"  # 'full' (corrected, every frame) or 'official' (reproduces the official code)
_C.EVAL.CHECKPOINT = ""
_C.EVAL.MEAN_BASELINE = False  # also score the mean training target of each test dataset, for reference
# Also score the SMPL body fitted to each video's meshes as the demo shows it (DEMO.SMPL_FIT_ITERS,
# DEMO.POSE_SMOOTH_SIGMA; lib/eval/body_fit.py): the row 'PMCE + SMPL fit'.
_C.EVAL.FIT_BODY = False
_C.EVAL.SAVE_VERTICES = True  # predictions_<dataset>.npz keeps both meshes (float16, ~83 KB a frame)
# Inference precision: 'auto' runs in bfloat16 where the device has native bfloat16 (CPU: AVX512-BF16 or
# AMX; GPU: Ampere or later), else float32 (lib/models/precision.py); 'float32' or 'bfloat16' force one.
_C.EVAL.PRECISION = "auto"
_C.EVAL.SHARE_FRAMES = True  # per-frame network parts once per frame, not once per window (same outputs)
# Test-time flip augmentation (evaluation and demo): each window's prediction averaged with the mirror
# image of the prediction for the mirrored window (lib/models/mirror.py); twice the inference time.
# Only where the image features can be mirrored (silhouettes: the synthetic datasets, the demo; or a model
# without image features): datasets with SPIN features are evaluated without it (metrics.json's flip_test).
_C.EVAL.FLIP_TEST = False

# ---------------------------------------------------------------------------------------------------
# Demo
# ---------------------------------------------------------------------------------------------------
_C.DEMO = CN()
_C.DEMO.CHECKPOINT = ""
_C.DEMO.MIN_TRACK_LEN = 16  # frames; shorter tracks are skipped with a message
_C.DEMO.BATCH_SIZE = 32
_C.DEMO.START_FRAME = 0  # first frame of the video to process
_C.DEMO.END_FRAME = -1  # frame after the last one to process; -1: to the end
_C.DEMO.IMAGE_FOLDER_FPS = 30.0  # frame rate assumed for an image folder (videos carry their own)
_C.DEMO.PEOPLE = "blazepose"  # people backend: 'blazepose' (offline, everyone in the frame), 'file' or 'onnx'
_C.DEMO.BLAZEPOSE_DIR = "data/models/blazepose"  # 'blazepose': the model files (scripts/fetch_assets.py)
_C.DEMO.DETECT_EVERY = 5  # 'blazepose': frames between scans for new people (followed people: every frame)
_C.DEMO.PEOPLE_THREADS = 2  # 'blazepose': LiteRT threads per model (sports2d: 34.5 vs 20.2 frames/s)
_C.DEMO.DETECTION_FILE = ""  # 'file': COCO result JSON (image_id = frame index + offset, bbox, keypoints)
_C.DEMO.DETECTION_FRAME_OFFSET = 0  # 'file': image_id of the video's first frame (1 if ids count from 1)
_C.DEMO.ONNX_DETECTOR = ""  # 'onnx': person detector .onnx (x1 y1 x2 y2 score), lib/people/onnx_backend.py
_C.DEMO.ONNX_POSE = ""  # 'onnx': top-down COCO-17 pose .onnx (SimCC or heatmap outputs)
_C.DEMO.MIN_SCORE = 0.5  # detections (and BlazePose's person flag) below this are dropped
_C.DEMO.TRACK_IOU = 0.3  # minimum box IoU to link a detection to a track in the previous frames
_C.DEMO.TRACK_MAX_GAP = 10  # missing frames filled by interpolation inside a track; longer gaps split it
_C.DEMO.PAD_MODE = "replicate"  # windows at track ends: 'replicate' or 'reflect' padding
_C.DEMO.FOCAL_LENGTH = 0.0  # pixels (demo.py --focal); 0: the frame diagonal (53-degree view across 16:9)
_C.DEMO.CAMERA_SMOOTH_SIGMA = 2.0  # frames, Gaussian smoothing of the fitted camera; 0: none
_C.DEMO.SAVE_OBJ = False  # also write one .obj per track and frame (large)
_C.DEMO.SAVE_GLB = True  # write the animated meshes of all tracks to one .glb (Blender, glTF viewers)
_C.DEMO.SAVE_RIG = True  # per track a skinned .glb and a .bvh of the fitted SMPL skeleton (needs FIT_SMPL)
_C.DEMO.SHOW = "fitted"  # the overlay and animation.glb show the 'fitted' SMPL body or the 'raw' network mesh
_C.DEMO.POSE_SMOOTH_SIGMA = 1.5  # frames, Gaussian filter of the fitted joint rotations and root; 0: none
_C.DEMO.SAVE_VIDEO = True  # write the overlay .mp4
_C.DEMO.FEATURES = "silhouette"  # image stream input: 'silhouette' (person mask), 'spin' or 'zeros'
# Test-time flip augmentation as EVAL.FLIP_TEST (which the demo model's and make run's evaluations turn on
# too); off with SPIN features, which cannot be mirrored.
_C.DEMO.FLIP_TEST = True
_C.DEMO.MASK_MAX_SIDE = 512  # pixels: person masks are kept at most this large (silhouette features)
_C.DEMO.SPIN_CHECKPOINT = "data/base_data/spin_model_checkpoint.pth.tar"  # 'spin': SPIN HMR weights (user's)
_C.DEMO.SPIN_BOX_SCALE = 1.1  # 'spin': crop side / keypoint-box diagonal, as the official demo
_C.DEMO.FIT_SMPL = True  # fit SMPL pose and shape to the predicted meshes (needs the body model files)
_C.DEMO.SMPL_FIT_ITERS = 4  # Gauss-Newton steps of the SMPL fit (all frames of a track at once)
_C.DEMO.OVERLAY_MAX_SIDE = 960  # pixels: the overlay video is downscaled to at most this side; 0: full size
_C.DEMO.SIDE_VIEW = False  # add a panel with the meshes seen from the side (turned 90 degrees about y)

# Allowed values of the string switches; checked after every merge.
CHOICES: dict[str, tuple[str, ...]] = {
    "STAGE": ("pose", "mesh"),
    "MODEL.INPUT_JOINT_SET": ("coco19", "h36m17"),
    "MODEL.POSE_STREAM.INPUT_NORM": ("screen", "root_scale", "window_root_scale"),
    "MODEL.DECODER.JOINT_INPUT": ("original", "chained"),
    "MODEL.DECODER.INIT": ("nearest_joint", "template", "zeros"),
    "MODEL.DECODER.NEAREST_JOINT_SET": ("h36m17", "input"),
    "MODEL.DECODER.NORM": ("adaln_official", "adaln", "layernorm"),
    "MODEL.DECODER.INTERACTION": ("both", "pose_to_mesh", "mesh_to_pose", "none"),
    "MODEL.DECODER.UPSAMPLE": ("conv", "matrix"),
    "MODEL.DECODER.OUTPUT_INIT": ("official", "upsampling"),
    "MODEL.DECODER.COND_INIT": ("default", "zero"),
    "DATA.TARGET_JOINT_SET": ("h36m17", "coco19"),
    "DATA.PAD_MODE": ("replicate", "reflect", "official"),
    "DATA.MESH_CACHE_DTYPE": ("float32", "float16"),
    "DATA.MISSING_FEATURES": ("error", "drop"),
    "DATA.NOISE.JOINT_SET": ("coco17", "h36m17"),
    "TRAIN.OPTIMIZER": ("adam", "adamw"),
    "TRAIN.SCHEDULER": ("step", "cosine"),
    "TRAIN.AMP": ("none", "bf16", "fp16"),
    "EVAL.PROTOCOL": ("full", "official"),
    "EVAL.PRECISION": ("auto", "float32", "bfloat16"),
    "DEMO.PEOPLE": ("blazepose", "file", "onnx"),
    "DEMO.PAD_MODE": ("replicate", "reflect"),
    "DATA.SYNTHETIC.DETECTOR": ("noise", "blazepose"),
    "DATA.EVAL_NOISE": ("video", "window"),
    "DATA.TRAIN_NOISE": ("window", "video"),
    "DEMO.SHOW": ("fitted", "raw"),
    "DEMO.FEATURES": ("silhouette", "spin", "zeros"),
}


# Smallest allowed value of the integer keys that count (0 where 0 means "off" or "all").
AT_LEAST: dict[str, int] = {
    "MODEL.SEQ_LEN": 1,
    "TRAIN.BATCH_SIZE": 1,
    "TRAIN.EPOCHS": 1,
    "TRAIN.LOG_EVERY": 1,
    "TRAIN.VAL_EVERY": 0,
    "TRAIN.SAVE_EVERY": 0,
    "TRAIN.CHECKPOINT_EVERY_ITERS": 0,
    "TRAIN.STOP_AFTER_ITERS": 0,
    "TRAIN.WARMUP_EPOCHS": 0,
    "TRAIN.MAX_NONFINITE_STEPS": 0,
    "EVAL.BATCH_SIZE": 1,
    "DEMO.BATCH_SIZE": 1,
    "DATA.WORKERS": 0,
    "DATA.EPOCH_LENGTH": 0,
    "DATA.STRIDE": 1,
    "DATA.MAX_FRAME_GAP": 1,
    "DATA.TEMPORAL_GROUP": 1,
}
GENDERS = ("neutral", "male", "female")  # the SMPL layers BODY.GENDERS may name

# Attention widths and their head counts: the width must split evenly over the heads.
_DIM_HEADS = (
    ("MODEL.POSE_STREAM.DIM", "MODEL.POSE_STREAM.HEADS"),
    ("MODEL.DECODER.JOINT_DIM", "MODEL.DECODER.JOINT_HEADS"),
    ("MODEL.DECODER.VERTEX_DIM", "MODEL.DECODER.VERTEX_HEADS"),
)


YAML_SUFFIXES = (".yaml", ".yml")  # the only config files read (yacs would import a .py config)


class ConfigError(UserError, ValueError):
    """A configuration file or override is invalid; the message names the key and the source."""


def get_cfg_defaults() -> CN:
    """A mutable copy of the defaults."""
    return _C.clone()


def get_cfg(path: str | os.PathLike | None = None, opts: Sequence[str] = ()) -> CN:
    """Defaults, then the YAML at ``path``, then ``KEY VALUE`` overrides; validated and frozen."""
    cfg = get_cfg_defaults()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (pass an existing YAML, e.g. configs/*.yaml)")
        for layer in _config_chain(path):
            _merge(cfg, _load_yaml(layer), source=str(layer))
        cfg._BASE_ = ""  # the merged config is self-contained
    return _finish(cfg, opts)


def get_cfg_from_text(
    text: str, opts: Sequence[str] = (), source: str = "saved config", ignore: Sequence[str] = ()
) -> CN:
    """Defaults, then a saved (self-contained) YAML text such as a checkpoint's ``config`` without its
    top-level sections named in ``ignore`` (they keep the defaults), then ``KEY VALUE`` overrides;
    validated and frozen."""
    cfg = get_cfg_defaults()
    saved = _parse_yaml(text, source)
    for section in ignore:
        saved.pop(section, None)
    _merge(cfg, saved, source=source)
    return _finish(cfg, opts)


# MODEL keys that only matter while training (initialisation, regularisation, where weights come from).
_TRAINING_ONLY_KEYS = (
    "MODEL.POSE_CHECKPOINT",
    "MODEL.POSE_STREAM.POS_EMBED_STD",
    "MODEL.POSE_STREAM.DROP_PATH",
    "MODEL.DECODER.DROP_PATH",
    "MODEL.DECODER.OUTPUT_INIT",
    "MODEL.DECODER.COND_INIT",
)


def model_mismatches(cfg: CN, saved_text: str, source: str, pose_stream_only: bool = False) -> list[str]:
    """The MODEL keys whose values differ between ``cfg`` and the config saved in checkpoint ``source``,
    as 'KEY: checkpoint A, config B' lines. Several switches (norms, input normalisation) change no
    weight's shape, so weights loaded under a wrong config would load without an error and compute
    something else. Training-only keys are not compared; nor the mesh-stage sections when only the pose
    stream is loaded or the checkpoint is a stage-1 one."""
    saved = get_cfg_from_text(saved_text, source=f"config saved in {source}")
    skipped = _TRAINING_ONLY_KEYS
    if pose_stream_only or saved.STAGE == "pose":
        skipped += ("MODEL.DECODER.", "MODEL.IMAGE_STREAM.")
    ours, theirs = _flatten(cfg.MODEL, "MODEL"), _flatten(saved.MODEL, "MODEL")
    return [
        f"{key}: checkpoint {theirs[key]!r}, config {value!r}"
        for key, value in ours.items()
        if not key.startswith(skipped) and theirs.get(key) != value
    ]


def check_model_config(cfg: CN, saved_text: str | None, source: str, pose_stream_only: bool = False) -> None:
    """ConfigError when the checkpoint ``source`` was trained with other MODEL settings than ``cfg``
    (checkpoints without a saved config, e.g. official ones, are not checked)."""
    if not isinstance(saved_text, str):
        return
    mismatches = model_mismatches(cfg, saved_text, source, pose_stream_only)
    if mismatches:
        folder = Path(source).parent / "config.yaml"
        raise ConfigError(
            f"{source} was trained with other MODEL settings than the config:\n  "
            + "\n  ".join(mismatches)
            + f"\nuse the run's config ({folder}) or override these keys to match"
        )


def _flatten(node: CN, prefix: str) -> dict:
    flat = {}
    for key, value in node.items():
        if isinstance(value, CN):
            flat.update(_flatten(value, f"{prefix}.{key}"))
        else:
            flat[f"{prefix}.{key}"] = value
    return flat


def _finish(cfg: CN, opts: Sequence[str]) -> CN:
    if opts:
        if len(opts) % 2:
            raise ConfigError(f"overrides must be KEY VALUE pairs, got an odd number: {list(opts)}")
        _merge(cfg, list(opts), source="command-line overrides")
    validate(cfg)
    cfg.freeze()
    return cfg


def _config_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[Path]:
    """``path`` preceded by the files it inherits from through a ``_BASE_: other.yaml`` line."""
    path = path.resolve()
    if path.suffix.lower() not in YAML_SUFFIXES:
        raise ConfigError(
            f"{path}: config files must be YAML ({' or '.join(YAML_SUFFIXES)}); other files are refused "
            "(yacs would run a Python config as code)"
        )
    if path in seen:
        raise ConfigError(f"{path}: _BASE_ files include each other in a cycle")
    base = _read_base(path)
    if base is None:
        return [path]
    base_path = (path.parent / base).resolve()
    if not base_path.is_file():
        raise ConfigError(f"{path}: _BASE_ file not found: {base_path}")
    return [*_config_chain(base_path, (*seen, path)), path]


def _read_base(path: Path) -> str | None:
    for line in _read_text(path).splitlines():
        if line.startswith("_BASE_:"):
            return line.split(":", 1)[1].strip().strip("'\"") or None
    return None


def _read_text(path: Path) -> str:
    """A config file's text; bytes that are not UTF-8 are a ConfigError naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); save the config as a UTF-8 YAML file"
        ) from None


def _load_yaml(path: Path) -> CN:
    """A YAML file as a node (parsed with yaml.safe_load: no tags that construct objects)."""
    return _parse_yaml(_read_text(path), str(path))


def _parse_yaml(text: str, source: str) -> CN:
    """YAML text as a node. A syntax error, or a top level that is not a mapping of ``KEY: value`` lines,
    is a one-line ConfigError naming ``source`` (and the line and column of a syntax error)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not a valid YAML config: {_yaml_problem(err)}") from None
    if data is None:  # an empty file: nothing to override
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: not a valid YAML config: the top level is a {type(data).__name__}, not a mapping of "
            "KEY: value lines (e.g. 'TRAIN:' and below it '  LR: 1.0e-4')"
        )
    try:
        return CN(data)
    except AssertionError as err:  # yacs: a value of a type configs cannot hold (e.g. a date)
        raise ConfigError(f"{source}: not a valid YAML config: {_one_line(str(err))}") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """'line L, column C: what is wrong (while ...)' of a YAML parse error, on one line."""
    if not isinstance(err, yaml.MarkedYAMLError) or err.problem_mark is None:
        return _one_line(str(err))
    mark, context = err.problem_mark, ""
    if err.context:
        at = err.context_mark
        context = f" ({err.context}" + (f" from line {at.line + 1}, column {at.column + 1})" if at else ")")
    hint = "indent with spaces, not tabs" if "'\\t'" in (err.problem or "") else "fix the YAML syntax there"
    return f"line {mark.line + 1}, column {mark.column + 1}: {err.problem}{context}; {hint}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _merge(cfg: CN, other: CN | list, source: str) -> None:
    """Merge a loaded YAML node or a ``KEY VALUE`` list into ``cfg`` (ints given for float keys become
    floats); yacs' errors become ConfigErrors naming ``source``."""
    try:
        if isinstance(other, CN):
            cfg.merge_from_other_cfg(_floats_for_floats(cfg, other))
        else:
            cfg.merge_from_list(_floats_in_overrides(cfg, other))
    except KeyError as err:  # yacs: "Non-existent config key: X"
        raise ConfigError(f"{source}: {err.args[0]} (see lib/config.py for the valid keys)") from None
    except (ValueError, AssertionError) as err:  # yacs: type mismatch / malformed value
        raise ConfigError(f"{source}: {_type_mismatch(cfg, str(err))}") from None


def _type_mismatch(cfg: CN, message: str) -> str:
    """yacs' "Type mismatch (<class 'A'> vs. <class 'B'>) with values (a vs. b) for config key: K" as one
    line that says what the key takes; a section given a value (or a value given a section) says so."""
    found = re.fullmatch(r"Type mismatch \(<class '(\S+)'> vs\. <class '(\S+)'>\).*for config key: (\S+)",
                         message, flags=re.S)  # fmt: skip
    if found is None:
        return _one_line(message)
    expected, given, key = found.groups()
    try:
        default = _lookup(get_cfg_defaults(), key)
    except KeyError:
        return _one_line(message)
    if isinstance(default, CN):
        return f"Type mismatch for {key}: it is a section of keys (on indented lines below it), not a value"
    if given.endswith("CfgNode"):
        return f"Type mismatch for {key}: it takes a {expected} (default {default!r}), not a section of keys"
    value = _one_line(message.split(" vs. ")[-1].split(") for config key")[0])
    return f"Type mismatch for {key}: it takes a {expected} (default {default!r}), got the {given} {value}"


def _floats_for_floats(defaults: CN, node: CN) -> CN:
    """``node`` (a loaded YAML) with its ints turned into floats where ``defaults`` holds floats: yacs'
    type check refuses 1680 for a float key ("Type mismatch (float vs. int)")."""
    for key, value in node.items():
        default = defaults.get(key)
        if isinstance(value, CN) and isinstance(default, CN):
            _floats_for_floats(default, value)
        else:
            node[key] = _float_if_expected(default, value)
    return node


def _floats_in_overrides(cfg: CN, opts: list) -> list:
    """``KEY VALUE`` overrides with each value that decodes to an int (or a list of them) given as a
    float where the key holds floats; other values stay as given for yacs to decode."""
    opts = list(opts)
    for i in range(0, len(opts) - 1, 2):
        try:
            default = _lookup(cfg, opts[i])
        except (KeyError, TypeError):  # unknown key: yacs reports it
            continue
        decoded = _literal(opts[i + 1])
        coerced = _float_if_expected(default, decoded)
        if coerced is not decoded:
            opts[i + 1] = coerced
    return opts


def _float_if_expected(default, value):
    """``value`` as a float (or a list of floats) where ``default`` is one and ``value`` is an int."""
    if isinstance(default, float) and _is_int(value):
        return float(value)
    floats = isinstance(default, list | tuple) and default and all(isinstance(d, float) for d in default)
    if floats and isinstance(value, list | tuple) and any(_is_int(v) for v in value):
        return type(value)(float(v) if _is_int(v) else v for v in value)
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _literal(value):
    """A command-line value as yacs decodes it: a Python literal where it parses as one, else the string."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def validate(cfg: CN) -> None:
    """Check the values that yacs' type check cannot: choices and ranges."""
    for key, allowed in CHOICES.items():
        value = _lookup(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key} = {value!r} is not one of {allowed}")
    _check_types(cfg)
    for key, minimum in AT_LEAST.items():
        if _lookup(cfg, key) < minimum:
            raise ConfigError(f"{key} must be >= {minimum}, got {_lookup(cfg, key)}")
    genders = list(cfg.BODY.GENDERS)
    if not genders or any(g not in GENDERS for g in genders) or len(set(genders)) < len(genders):
        raise ConfigError(f"BODY.GENDERS must name SMPL layers of {list(GENDERS)}, each once; got {genders}")
    seq_len = cfg.MODEL.SEQ_LEN
    if not -1 <= cfg.MODEL.TARGET_INDEX < seq_len:
        raise ConfigError(
            f"MODEL.TARGET_INDEX must be -1 or in [0, {seq_len - 1}], got {cfg.MODEL.TARGET_INDEX}"
        )
    for dim_key, heads_key in _DIM_HEADS:
        dim, heads = _lookup(cfg, dim_key), _lookup(cfg, heads_key)
        if dim % heads:
            raise ConfigError(f"{dim_key} = {dim} is not divisible by {heads_key} = {heads}")
    if not cfg.MODEL.DECODER.USE_IMG_FEAT and cfg.MODEL.DECODER.NORM != "layernorm":
        raise ConfigError(
            "MODEL.DECODER.USE_IMG_FEAT False leaves nothing to condition on: "
            "set MODEL.DECODER.NORM layernorm"
        )
    if cfg.MODEL.DECODER.COND_INIT == "zero" and cfg.MODEL.DECODER.NORM == "adaln_official":
        raise ConfigError(
            "MODEL.DECODER.COND_INIT zero does not fit MODEL.DECODER.NORM adaln_official (a zero gamma "
            "would erase its output): use NORM adaln, or COND_INIT default"
        )
    if len(cfg.DATA.TRAIN_RATIOS) != len(cfg.DATA.TRAIN_LIST):
        raise ConfigError(
            f"DATA.TRAIN_RATIOS has {len(cfg.DATA.TRAIN_RATIOS)} entries but DATA.TRAIN_LIST "
            f"has {len(cfg.DATA.TRAIN_LIST)}; give one ratio per training dataset"
        )
    if not 0 < cfg.DATA.TEMPORAL_GROUP_SHARE <= 1:
        raise ConfigError(f"DATA.TEMPORAL_GROUP_SHARE must be in (0, 1], got {cfg.DATA.TEMPORAL_GROUP_SHARE}")
    ratios = cfg.DATA.TRAIN_RATIOS
    if ratios and (min(ratios) < 0 or sum(ratios) <= 0):
        raise ConfigError(
            f"DATA.TRAIN_RATIOS are sampling weights: each >= 0 and at least one > 0; got {list(ratios)}"
        )


def _check_types(cfg: CN) -> None:
    """Each value has its default's type: yacs lets a YAML ``null`` through for any key, and checks only
    the list itself, not its items (e.g. DATA.TRAIN_RATIOS ['a']); list items are checked against the
    type of the default's items (where the default is a non-empty list of one type)."""
    defaults = _flatten(_C, "")
    for key, value in _flatten(cfg, "").items():
        key, default = key[1:], defaults.get(key)
        if default is None:
            continue
        if value is None:
            raise ConfigError(f"{key} is empty (null); give a {type(default).__name__}, e.g. {default!r}")
        if not isinstance(default, list | tuple) or not default:
            continue
        item_type = type(default[0])
        if all(type(d) is item_type for d in default) and any(type(v) is not item_type for v in value):
            raise ConfigError(
                f"{key} takes a list of {item_type.__name__} values like its default {list(default)}, "
                f"got {list(value)}"
            )


def target_index(cfg: CN) -> int:
    """The predicted frame of a window: MODEL.TARGET_INDEX, or T // 2 when it is -1 (the windows' rule,
    lib/keypoints.py)."""
    from lib.keypoints import resolve_target_index  # numpy: reading a config stays light

    return resolve_target_index(cfg.MODEL.SEQ_LEN, cfg.MODEL.TARGET_INDEX)


def save_cfg(cfg: CN, path: str | os.PathLike) -> None:
    """Write the merged config as YAML, atomically."""
    from lib.io import write_text_atomic

    write_text_atomic(path, cfg.dump())


def _lookup(cfg: CN, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node
