"""Judges of blinded detection and fuzzing tasks: the protocol, running one, and the embedded model as judge.

A :class:`Judge` answers a :class:`~interp_agent.core.explain.scoring.JudgeTask` with one probability
per item; :func:`run_judge` asks it (and, for the random-explanation null, the same items under
another feature's explanation) and grades the answers with ``scoring.grade``. ``chat.ChatJudge`` is
the endpoint judge; the agent answers through the ``judge_explanation`` tool instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.explain.explanations import Score
from interp_agent.core.explain.scoring import (
    MARK_CLOSE,
    MARK_OPEN,
    N_BOOT,
    AnswerKey,
    JudgeMethod,
    JudgeTask,
    grade,
    null_task,
)

if TYPE_CHECKING:
    from interp_agent.core.models.loading import LoadedModel


class Judge(Protocol):
    """Answers a judge task: for each item, the probability that it fits the explanation."""

    name: str
    """Recorded in the score's ``judge`` field."""

    def judge(self, explanation: str, items: Sequence[str], method: JudgeMethod) -> list[float]:
        """One probability in [0, 1] per item, in order."""
        ...


def run_judge(judge: Judge, task: JudgeTask, key: AnswerKey, *, null_text: str | None = None,
              null_feature: str | None = None, seed: int = 0, n_boot: int = N_BOOT) -> Score:
    """Have ``judge`` answer ``task`` (and, with ``null_text``, its :func:`null_task`), then :func:`grade` it.

    Raises:
        ValidationError: the judge answered a different number of items, or values out of [0, 1].
    """
    texts = [item.text for item in task.items]
    ids = [item.item_id for item in task.items]

    def ask(explanation: str) -> dict[str, float]:
        values = list(judge.judge(explanation, texts, task.method))
        if len(values) != len(ids):
            raise ValidationError(f"judge {judge.name!r} answered {len(values)} values for {len(ids)} items")
        return dict(zip(ids, values, strict=True))

    null_answers = None
    if null_text is not None:
        null_answers = ask(null_task(task, null_text).explanation)
    return grade(task, key, ask(task.explanation), judge=judge.name, null_answers=null_answers,
                 null_feature=null_feature, seed=seed, n_boot=n_boot)


QUESTIONS: dict[JudgeMethod, str] = {
    "detection": "Does the explanation describe this text?",
    "fuzzing": f"Do the tokens marked {MARK_OPEN}like this{MARK_CLOSE} fit the explanation?",
}


JUDGE_SYSTEM = "You check whether an explanation fits a text. Answer Yes or No."
"""System message of the local judge (short: it replaces the model's default, and every token costs)."""


class ModelJudge:
    """A local causal LM as judge: P(Yes) against P(No) as its first answer token.

    With the embedded SmolLM2-135M-Instruct this is a *weak* judge: its scores say little about an
    explanation, and it is here so scoring works offline; prefer the agent or a chat endpoint.
    """

    def __init__(self, loaded: LoadedModel, *, batch_size: int = 8) -> None:
        """Wrap a loaded model (``load_model('smollm2-135m')``); ``batch_size`` prompts per forward pass."""
        if batch_size < 1:
            raise ValidationError(f"{arg('batch_size', batch_size)} must be at least 1")
        self.loaded = loaded
        self.batch_size = batch_size
        self.name = f"{loaded.name} (weak local judge)"
        self._yes, self._no = _first_token(loaded.tokenizer, "Yes"), _first_token(loaded.tokenizer, "No")

    def prompt(self, explanation: str, text: str, method: JudgeMethod) -> str:
        """The prompt for one item: the chat template when the tokenizer has one, else plain text."""
        content = f"Explanation: {explanation}\nText: {text}\n{QUESTIONS[method]} Answer Yes or No."
        tok = self.loaded.tokenizer
        if getattr(tok, "chat_template", None):
            messages = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": content}]
            return str(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        return f"{content}\nAnswer:"

    def judge(self, explanation: str, items: Sequence[str], method: JudgeMethod) -> list[float]:
        """softmax(logit Yes, logit No)[Yes] for each item, in batches."""
        prompts = [self.prompt(explanation, text, method) for text in items]
        out: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            out += self._batch(prompts[start:start + self.batch_size])
        return out

    def _batch(self, prompts: list[str]) -> list[float]:
        import torch

        tok = self.loaded.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        ids_BS = enc["input_ids"].to(self.loaded.device)
        mask_BS = enc["attention_mask"].to(self.loaded.device)
        last_B = mask_BS.sum(dim=1) - 1  # right padding: the last real token
        rows_B = torch.arange(len(prompts), device=ids_BS.device)
        model: Any = self.loaded.model
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        with torch.inference_mode():
            if head is not None and hasattr(model, "base_model") and model.base_model is not model:
                # the unembedding at the last real token only: most of the vocabulary matmul is skipped
                hidden_BSD = model.base_model(input_ids=ids_BS, attention_mask=mask_BS).last_hidden_state
                logits_BV = head(hidden_BSD[rows_B, last_B])
            else:
                logits_BV = model(input_ids=ids_BS, attention_mask=mask_BS).logits[rows_B, last_B]
        pick_B2 = logits_BV[:, [self._yes, self._no]]
        return torch.softmax(pick_B2.float(), dim=-1)[:, 0].cpu().tolist()


def _first_token(tokenizer: Any, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if not ids:
        raise ValidationError(f"the judge's tokenizer encodes {word!r} as no tokens; use another model as judge")
    return int(ids[0])
