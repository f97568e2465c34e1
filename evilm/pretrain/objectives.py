"""The pre-training objectives (paper Section 3.4, eq. 8): the model with its heads, and each step's draws.

- ``prepare_batch`` draws everything random for a micro-batch from a generator seeded by (seed,
  step, micro-batch): the MLM word mask (``mlm_prob`` of the words, 80/10/10), the region mask
  (``evilm.pretrain.masking``), the mismatched captions for VTM. The tokenizer labels the
  *unmasked* frames (or the codes come cached per clip).
- ``EViLMForPretraining.forward`` computes the chosen losses. MLM and MVM share one pass: masked
  frames (masked regions zeroed in pixel space) with masked text; the MLM head reads the masked
  words, the MVM head the masked regions (eq. 3). VTM runs on clean inputs: each clip with its own
  caption (label 1) and with another clip's caption from the batch (label 0; 1 if the two captions
  are the same words), a binary head on CLS. With ``vtm_align`` > 0, VTM also aligns the unimodal
  embeddings of the clean pairs contrastively (``vtm_align``, ``evilm.pretrain.losses.align_loss``).

Under DDP (``evilm.pretrain.loop``) the draws are made for the global batch: ``gather_captions``
collects every rank's captions and ``rank_shares`` weighs each rank's means by its share of the
targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from evilm.data.text import PAD_ID, mask_tokens
from evilm.models.evilm import EViLM
from evilm.models.heads import MLMHead, MVMHead, VTMHead
from evilm.pretrain.config import PretrainConfig
from evilm.pretrain.losses import IGNORE, align_loss, mlm_loss, mvm_loss, vtm_loss, vtm_pairs
from evilm.pretrain.masking import apply_region_mask, make_mask
from evilm.train import distributed as D


class EViLMForPretraining(nn.Module):
    """The E-ViLM backbone plus the heads of the chosen losses."""

    def __init__(self, backbone: EViLM, losses: list[str], vtm_align: bool = False):
        super().__init__()
        self.backbone = backbone
        self.losses = list(losses)
        self.vtm_align = vtm_align and "vtm" in losses
        cfg = backbone.config
        self.mlm_head = MLMHead(backbone.width, cfg.text.vocab_size) if "mlm" in losses else None
        self.vtm_head = VTMHead(backbone.width) if "vtm" in losses else None
        self.mvm_head = MVMHead(backbone.width, cfg.codebook_size) if "mvm" in losses else None

    def heads(self) -> dict[str, nn.Module]:
        return {name: getattr(self, f"{name}_head") for name in self.losses}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss terms and accuracies of a batch made by ``prepare_batch``."""
        out: dict[str, torch.Tensor] = {}
        bb = self.backbone
        frames, ids, attn = batch["frames"], batch["input_ids"], batch["attention_mask"]
        clean_video = None
        if self.mlm_head is not None or self.mvm_head is not None:
            if self.mvm_head is not None:
                video = bb.encode_video(apply_region_mask(frames, batch["region_mask"], bb.stride))
            else:
                video = clean_video = bb.encode_video(frames)
            text_ids = batch["mlm_input_ids"] if self.mlm_head is not None else ids
            fused = bb.fuse(video=video, text=bb.encode_text(text_ids, attn), text_mask=attn)
            if self.mlm_head is not None:
                labels = batch["mlm_labels"]
                chosen = labels != IGNORE
                logits = self.mlm_head(fused.text[chosen])
                out["mlm"] = mlm_loss(logits, labels[chosen])
                out["mlm_acc"] = _accuracy(logits, labels[chosen])
            if self.mvm_head is not None:
                region_mask = batch["region_mask"]
                logits = self.mvm_head(fused.video[region_mask.flatten(1)])
                out["mvm"] = mvm_loss(logits, batch["codes"], region_mask)
                out["mvm_acc"] = _accuracy(logits, batch["codes"][region_mask])
        if self.vtm_head is not None:
            if clean_video is None:
                clean_video = bb.encode_video(frames)
            text = bb.encode_text(ids, attn)
            if "vtm_negative_ids" in batch:  # under DDP: captions drawn from the global batch, encoded here
                neg_attn = batch["vtm_negative_mask"]
                neg_text = bb.encode_text(batch["vtm_negative_ids"], neg_attn)
            else:
                neg = batch["vtm_negatives"]
                neg_text, neg_attn = text[neg], attn[neg]
            fused = bb.fuse(
                video=torch.cat([clean_video, clean_video]),
                text=torch.cat([text, neg_text]),
                text_mask=torch.cat([attn, neg_attn]),
            )
            logits = self.vtm_head(fused.cls)
            out["vtm"] = vtm_loss(logits, batch["vtm_labels"])
            if self.vtm_align:
                out["vtm_align"] = align_loss(text, attn, clean_video)
            out["vtm_acc"] = _accuracy(logits, batch["vtm_labels"])
        return out


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if targets.numel() == 0:
        return torch.zeros((), device=logits.device)
    return (logits.detach().argmax(-1) == targets).float().mean()


@dataclass
class GlobalCaptions:
    """Under DDP: the captions of the whole micro-batch (every rank's rows in rank order, padded to one
    length) and this rank's rows among them."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    rows: slice


def prepare_batch(
    batch: dict[str, Any],
    cfg: PretrainConfig,
    model: EViLMForPretraining,
    generator: torch.Generator,
    tokenizer: Any | None,
    device: torch.device,
    captions: GlobalCaptions | None = None,
) -> dict[str, torch.Tensor]:
    """Move a data batch to the device and draw the step's masks, MLM targets and VTM negatives.

    With ``captions`` (DDP), the draws are made for the global batch, as one process would make
    them, and this rank keeps its rows; VTM negatives then come as captions, not indices.
    """
    sharded = captions is not None
    if captions is None:  # one process: its batch is the global batch
        captions = GlobalCaptions(batch["input_ids"], batch["attention_mask"], slice(None))
    all_ids, all_attn, mine = captions.input_ids, captions.attention_mask, captions.rows
    frames = batch["frames"]
    ids, attn = all_ids[mine], all_attn[mine]
    out: dict[str, torch.Tensor] = {"frames": frames, "input_ids": ids, "attention_mask": attn}
    if "mlm" in cfg.losses:
        # BERT's 80/10/10 masking of cfg.mlm_prob of the words (evilm.data.text); labels IGNORE elsewhere
        vocab_size = model.backbone.config.text.vocab_size
        masked, labels = mask_tokens(all_ids, all_attn, vocab_size, cfg.mlm_prob, generator)
        out["mlm_input_ids"], out["mlm_labels"] = masked[mine], labels[mine]
    if "mvm" in cfg.losses:
        _, t, _, h, w = frames.shape
        gh, gw = model.backbone.video_grid(h, w)
        out["region_mask"] = make_mask((len(all_ids), t, gh, gw), cfg.mask, generator)[mine]
        if "codes" in batch:  # labels cached per clip by evilm.tokenizers
            out["codes"] = batch["codes"].long()
        elif tokenizer is not None:
            out["codes"] = tokenizer.encode(frames.to(device)).cpu()
        else:
            raise ValueError("MVM needs a video tokenizer (inputs['tokenizer']) or cached codes in the batch")
        if out["codes"].shape != out["region_mask"].shape:
            raise ValueError(
                f"tokenizer codes {tuple(out['codes'].shape)} are not on the model's MVM grid "
                f"{tuple(out['region_mask'].shape)}: the tokenizer's stride/image size do not match the model"
            )
    if "vtm" in cfg.losses:
        neg = vtm_pairs(len(all_ids), generator)
        # an identical caption still matches
        same = (all_ids == all_ids[neg]).all(1) & (all_attn == all_attn[neg]).all(1)
        if sharded:  # the mismatched caption may sit on another rank: pass the caption itself
            out["vtm_negative_ids"], out["vtm_negative_mask"] = all_ids[neg[mine]], all_attn[neg[mine]]
        else:
            out["vtm_negatives"] = neg
        out["vtm_labels"] = torch.cat([torch.ones(len(ids), dtype=torch.long), same[mine].long()])
    return {k: v.to(device, non_blocking=True) for k, v in out.items()}


def gather_captions(batch: dict[str, Any], counts: list[int]) -> GlobalCaptions:
    """Every rank's captions of this micro-batch, padded to the longest (as one process's collate pads
    the global batch), and this rank's rows; ``counts`` is every rank's number of clips."""
    ids, attn = batch["input_ids"], batch["attention_mask"]
    length = int(D.gather_rows(torch.tensor([ids.shape[1]])).max())
    pad = length - ids.shape[1]
    ids = torch.nn.functional.pad(ids, (0, pad), value=PAD_ID)
    attn = torch.nn.functional.pad(attn.to(ids.dtype), (0, pad), value=0)
    both = D.gather_rows(torch.stack([ids, attn], dim=1))  # (B, 2, L): one exchange for ids and mask
    rank = D.rank_and_world()[0]
    start = sum(counts[:rank])
    return GlobalCaptions(both[:, 0], both[:, 1].to(batch["attention_mask"].dtype),
                          slice(start, start + counts[rank]))


def rank_shares(batch: dict[str, torch.Tensor], cfg: PretrainConfig) -> dict[str, float]:
    """Under DDP, each term's weight on this rank: its number of targets over the ranks' mean number.

    A term is the mean over its targets (masked words, masked regions, video-text pairs). DDP averages
    the ranks' gradients; weighting rank r's mean by n_r / mean(n) makes that average the gradient of
    the global batch's mean, and the ranks' average of the weighted values the global value.
    """
    counts: dict[str, float] = {}
    if "mlm" in cfg.losses:
        counts["mlm"] = float((batch["mlm_labels"] != IGNORE).sum())
    if "mvm" in cfg.losses:
        counts["mvm"] = float(batch["region_mask"].sum())
    if "vtm" in cfg.losses:
        counts["vtm"] = float(len(batch["vtm_labels"]))
    mean = D.mean_over_ranks(counts)
    return {k: counts[k] / mean[k] if mean[k] > 0 else 0.0 for k in counts}
