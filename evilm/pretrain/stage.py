"""The pre-training stage: a model, a data set and MVM targets from the stage's inputs, then the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from evilm.config import ConfigError, deep_update
from evilm.data.datasets import build_dataset
from evilm.data.frame_cache import frame_cache_dir
from evilm.data.loading import BatchCollator, CachedClips, frame_config, records_of, resolve_text_tokenizer
from evilm.models.config import preset_config
from evilm.models.evilm import EViLM
from evilm.models.weights import load_backbone
from evilm.pretrain.config import PretrainConfig
from evilm.pretrain.loop import pretrain
from evilm.pretrain.objectives import EViLMForPretraining
from evilm.stage import MetricsCallback, StageResult
from evilm.train import distributed as D
from evilm.train.checkpoint import derived_seed


def run(
    config: PretrainConfig,
    inputs: dict[str, Any],
    out_dir: str | Path,
    on_metrics: MetricsCallback | None = None,
) -> StageResult:
    """Stage: pretrain on ``inputs['data']`` (a data root with ``config.benchmark``).

    Inputs: ``data`` (required); ``tokenizer`` (a video tokenizer file, for MVM online);
    ``codes`` (per-clip codes from the tokenizer stage, for ``mvm_targets='cached'``);
    ``text_tokenizer`` (a TextTokenizer file; default: built from the data's WebVid captions);
    ``resume`` (a checkpoint to continue from).
    Artifacts: ``model`` (model.pt, only when complete), ``checkpoint``, ``text_tokenizer``, ``metrics``.
    """
    out_dir = Path(out_dir)
    if "data" not in inputs:
        raise ConfigError("inputs.data", "pretraining needs a data root")
    data_root = Path(inputs["data"])
    text_tokenizer = resolve_text_tokenizer(inputs, data_root, config.vocab_keep_fraction, config.vocab_text)
    overrides: dict[str, Any] = {"text": {"vocab_size": text_tokenizer.vocab_size}}
    video_tokenizer, codes = None, None
    if "mvm" in config.losses:
        if config.mvm_targets == "cached":
            from evilm.tokenizers.cache import CachedCodes

            if "codes" not in inputs:
                raise ConfigError("inputs.codes", "mvm_targets='cached' needs the tokenizer stage's codes file")
            codes = CachedCodes(inputs["codes"])
            overrides["codebook_size"] = codes.codebook_size
            stride = codes.stride
        else:
            from evilm.tokenizers.factory import load_tokenizer

            if "tokenizer" not in inputs:
                raise ConfigError("inputs.tokenizer", "MVM needs a video tokenizer file")
            video_tokenizer = load_tokenizer(inputs["tokenizer"])
            overrides["codebook_size"] = video_tokenizer.codebook_size
            stride = video_tokenizer.stride
    model_cfg = preset_config(config.model, deep_update(config.model_overrides, overrides))

    torch.manual_seed(derived_seed(config.seed, "init"))
    model = EViLMForPretraining(EViLM(model_cfg), config.losses, vtm_align=config.vtm_align > 0)
    if inputs.get("video_init"):  # the image prior / ImageNet weights: what the paper's EdgeNeXt starts from
        load_backbone(model.backbone.video_encoder.backbone, inputs["video_init"], model_cfg.video.backbone)
    if "mvm" in config.losses and stride != model.backbone.stride:
        raise ValueError(f"the video tokenizer labels {stride}px regions but the model's MVM grid has "
                         f"{model.backbone.stride}px regions; train the tokenizer with stride={model.backbone.stride}")

    _, records = records_of(config.benchmark, data_root, "train")
    frames = frame_config(model_cfg, frame_cache_dir(config.frame_cache, data_root))
    dataset = build_dataset("video_text", records, text_tokenizer, frames, train=config.augment,
                            max_text_len=model_cfg.max_text_len, seed=config.seed)
    if config.cache_clips and not config.augment:
        if config.num_workers > 0:
            raise ConfigError("num_workers", "cache_clips keeps clips in this process: use num_workers=0")
        dataset = CachedClips(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    text_path = out_dir / "text_tokenizer.json"
    if D.on_main():  # ranks share out_dir: one writer (every rank built the same vocabulary)
        text_tokenizer.save(text_path)
    result = pretrain(
        config, model, dataset, out_dir, tokenizer=video_tokenizer, collate_fn=BatchCollator(dataset, codes),
        on_metrics=on_metrics, resume_from=inputs.get("resume"),
        meta={"text_vocab": text_tokenizer.vocab, "benchmark": config.benchmark},
    )
    result.artifacts["text_tokenizer"] = text_path
    return result
