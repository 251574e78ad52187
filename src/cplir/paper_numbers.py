"""The published numbers the shipped configs reproduce, typed once.

Every config that names a paper number in its ``reproduces:`` string quotes :meth:`PaperResult.quote` of an entry
here (a test checks it), so a label cannot drift from its number. PSNR in dB, SSIM in [0, 1], each under the
metric protocol the paper's table uses (:mod:`cplir.metrics.protocols`).
"""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

CPL = "CPL (TPAMI, arXiv 2504.09973)"
MCLIR = "MCLIR (AAAI 2024, arXiv 2309.06023)"
SR_SETS = ("Set14", "B100", "Urban100", "Manga109")  # the sets of MCLIR's SR table; its average is over these four


@dataclass(frozen=True)
class PaperResult:
    """One row of a paper's table.

    Attributes:
        source: paper and table.
        protocol: metric protocol of the table (``promptir``, ``basicsr_rgb``, ``basicsr_y``) and its border crop.
        crop_border: pixels removed from every side before scoring.
        psnr: average PSNR over the benchmark's tasks.
        ssim: average SSIM, if the table gives one.
        ssim_digits: decimals the table prints for SSIM.
        per_task: ``(column label, PSNR)`` in the table's column order, where the numbers are quoted per task.
    """

    source: str
    protocol: str
    crop_border: int
    psnr: float
    ssim: Optional[float] = None
    ssim_digits: int = 3
    per_task: Tuple[Tuple[str, float], ...] = ()

    def quote(self) -> str:
        """The numbers as a config quotes them, e.g. ``σ15 34.15, ...; avg 32.78/0.917``."""
        average = f"avg {self.psnr:.2f}" + (f"/{self.ssim:.{self.ssim_digits}f}" if self.ssim is not None else "")
        if not self.per_task:
            return average
        return ", ".join(f"{label} {value:.2f}" for label, value in self.per_task) + "; " + average


def _mclir_sots_row(row: str, psnr: float, ssim: float) -> PaperResult:
    """A row of MCLIR's dehazing table, SOTS-indoor columns (scored as its FFANet options score it)."""
    return PaperResult(f"{MCLIR} dehazing table, SOTS-indoor, {row} row", "basicsr_rgb", 0, psnr, ssim)


def _mclir_sr_row(row: str, psnr: Tuple[float, ...], average: float, ssim: float) -> PaperResult:
    """A ×4 row of MCLIR's SR table: PSNR per set of :data:`SR_SETS`, their average and average SSIM."""
    return PaperResult(f"{MCLIR} SR table, ×4, {row} row", "basicsr_y", 4, average, ssim, ssim_digits=4,
                       per_task=tuple(zip(SR_SETS, psnr)))


PAPER_RESULTS: Dict[str, PaperResult] = {
    "promptir/three_task": PaperResult("PromptIR (NeurIPS 2023) Table 1, three-task all-in-one", "promptir", 0,
                                       32.06, 0.913),
    "cpl/three_task": PaperResult(
        f"{CPL} three-task table, PromptIR+CPL row (α=0.01)", "promptir", 0, 32.78, 0.917,
        per_task=(("σ15", 34.15), ("σ25", 31.50), ("σ50", 28.23), ("SOTS", 31.27), ("Rain100L", 38.77))),
    "promptir/five_task": PaperResult(f"{CPL} five-task table, PromptIR row", "promptir", 0, 29.15, 0.904),
    "cpl/five_task": PaperResult(f"{CPL} five-task table, PromptIR+CPL row", "promptir", 0, 30.55, 0.915),
    "promptir/seven_task": PaperResult(f"{CPL} seven-task (MiOIR) table, PromptIR row", "basicsr_rgb", 4, 31.88),
    "cpl/seven_task": PaperResult(f"{CPL} seven-task (MiOIR) table, PromptIR+CPL row", "basicsr_rgb", 4, 33.30),
    "promptir/allweather": PaperResult(f"{CPL} all-weather table (Table IV), PromptIR row", "basicsr_y", 0,
                                       32.80, 0.9357, ssim_digits=4),
    "cpl/allweather": PaperResult(f"{CPL} all-weather table (Table IV), PromptIR+CPL row", "basicsr_y", 0,
                                  33.74, 0.9437, ssim_digits=4),
    "promptir/weatherbench": PaperResult(f"{CPL} WeatherBench table, PromptIR row", "basicsr_y", 0, 27.86),
    "cpl/weatherbench": PaperResult(f"{CPL} WeatherBench table, PromptIR+CPL row", "basicsr_y", 0, 30.35),
    "nafnet/five_task": PaperResult(f"{CPL} Table X, NAFNet row, five-task", "promptir", 0, 27.76, 0.881),
    "cpl/nafnet_five_task": PaperResult(f"{CPL} Table X, NAFNet+CPL row, five-task", "promptir", 0, 29.57, 0.893),
    "drsformer/five_task": PaperResult(f"{CPL} Table X, DRSformer row, five-task", "promptir", 0, 27.28, 0.873),
    "cpl/drsformer_five_task": PaperResult(f"{CPL} Table X, DRSformer+CPL row, five-task", "promptir", 0,
                                           28.72, 0.884),
    "fsnet/five_task": PaperResult(f"{CPL} Table X, FSNet row, five-task", "promptir", 0, 28.71, 0.898),
    "cpl/fsnet_five_task": PaperResult(f"{CPL} Table X, FSNet+CPL row, five-task", "promptir", 0, 29.86, 0.905),
    "mambair/five_task": PaperResult(f"{CPL} Table X, MambaIR row, five-task", "promptir", 0, 28.97, 0.901),
    "cpl/mambair_five_task": PaperResult(f"{CPL} Table X, MambaIR+CPL row, five-task", "promptir", 0, 29.98, 0.908),
    "promptir/cdd11": PaperResult(f"{CPL} CDD-11 table, PromptIR row", "promptir", 0, 25.90),
    "cpl/cdd11": PaperResult(f"{CPL} CDD-11 table, PromptIR+CPL row (5 prompts)", "promptir", 0, 29.07),
    "cpl/cdd11_p10": PaperResult(f"{CPL} CDD-11 table, PromptIR+CPL with 10 prompts", "promptir", 0, 29.60),
    "cpl/cdd11_p15": PaperResult(f"{CPL} CDD-11 table, PromptIR+CPL with 15 prompts", "promptir", 0, 29.85),
    # MCLIR's tables: each baseline row is the network's own published number; +SPN is MCLIR's retraining.
    "ffanet/sots_indoor": _mclir_sots_row("FFANet", 36.39, 0.989),
    "mclir/ffanet_sots_indoor": _mclir_sots_row("FFANet+SPN", 39.80, 0.995),
    "dehazeformer_t/sots_indoor": _mclir_sots_row("DehazeFormer-T", 35.15, 0.989),
    "mclir/dehazeformer_t_sots_indoor": _mclir_sots_row("DehazeFormer-T+SPN", 35.51, 0.990),
    "dehazeformer_s/sots_indoor": _mclir_sots_row("DehazeFormer-S", 36.82, 0.992),
    "mclir/dehazeformer_s_sots_indoor": _mclir_sots_row("DehazeFormer-S+SPN", 37.24, 0.993),
    "dehazeformer_b/sots_indoor": _mclir_sots_row("DehazeFormer-B", 37.84, 0.994),
    "mclir/dehazeformer_b_sots_indoor": _mclir_sots_row("DehazeFormer-B+SPN", 38.41, 0.994),
    "idt/spa": PaperResult(f"{MCLIR} deraining table, SPA column, IDT row", "basicsr_y", 0, 47.34, 0.9929,
                           ssim_digits=4),
    "mclir/idt_spa": PaperResult(f"{MCLIR} deraining table, SPA column, IDT+SPN row", "basicsr_y", 0, 48.04, 0.9938,
                                 ssim_digits=4),
    "swinir_light/x4": _mclir_sr_row("SwinIR-light", (28.77, 27.69, 26.47, 30.92), 28.46, 0.8099),
    "mclir/swinir_light_x4": _mclir_sr_row("SwinIR-light+SPN", (28.85, 27.72, 26.57, 31.04), 28.55, 0.8114),
    "edsr_baseline/x4": _mclir_sr_row("EDSR-light (EDSR-baseline)", (28.58, 27.57, 26.04, 30.35), 28.14, 0.8021),
    "mclir/edsr_baseline_x4": _mclir_sr_row("EDSR-light (EDSR-baseline)+SPN", (28.63, 27.59, 26.12, 30.51), 28.21,
                                            0.8040),
}
