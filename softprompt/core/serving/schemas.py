"""Request and response bodies of the HTTP API (pydantic models; FastAPI's OpenAPI spec).

Types are strict (no coercion: ``"8"`` is not a number) and unknown fields are refused in
softprompt's own endpoints; the OpenAI-compatible ones ignore fields they do not use, as
OpenAI clients send many. Wrong types are 400; values out of range are 422.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

TaskSpec = Union[str, list[str]]

TASK_DOC = ("A task name (a prompt file's stem), or a list of task names: an ensemble of those "
            "prompts in one pass (majority vote when generating, mean log-likelihood when "
            "classifying).")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Usage(BaseModel):
    prompt_tokens: int = Field(description="Input tokens run through the encoder (every "
                                           "ensemble member counts).")
    completion_tokens: int = Field(description="Tokens decoded (every ensemble member counts).")
    total_tokens: int


class GenerateRequest(_Strict):
    task: TaskSpec = Field(description=TASK_DOC, examples=["animal_food"])
    inputs: list[str] = Field(min_length=1, description="Model inputs, as the task formats "
                              "them.", examples=[["the cow walks to the barn."]])
    max_new_tokens: int | None = Field(
        default=None, ge=1, description="Tokens to decode at most (default: the prompt's "
        "training setting from its sidecar, else 32; at most the server's limit).")


class GenerateResponse(BaseModel):
    task: TaskSpec
    outputs: list[str] = Field(description="One greedy decoding per input (an ensemble's "
                                           "majority answer).")
    prompt_sha256: TaskSpec = Field(description="SHA-256 of each prompt file used.")
    usage: Usage


class ClassifyRequest(_Strict):
    task: TaskSpec = Field(description=TASK_DOC, examples=["animal_food"])
    inputs: list[str] = Field(min_length=1, examples=[["the cow walks to the barn."]])
    labels: list[str] | None = Field(
        default=None, min_length=1, description="Candidate answers (default: the task's "
        "labels, recorded in the prompt's sidecar).")


class Classification(BaseModel):
    label: str = Field(description="The label with the highest log-likelihood.")
    scores: dict[str, float] = Field(description="Log-likelihood of each label (an "
                                                 "ensemble's mean).")


class ClassifyResponse(BaseModel):
    task: TaskSpec
    results: list[Classification]
    prompt_sha256: TaskSpec
    usage: Usage


class CompletionRequest(BaseModel):
    """OpenAI's legacy completions request; decoding is greedy."""

    model_config = ConfigDict(extra="ignore", strict=True)
    model: str = Field(description="The task name.", examples=["animal_food"])
    prompt: Union[str, list[str]] = Field(examples=["the cow walks to the barn."])
    max_tokens: int | None = Field(default=16, ge=1)
    temperature: float | None = Field(default=None, ge=0, description="Only 0 (greedy).")
    top_p: float | None = None
    n: int | None = Field(default=1, ge=1, description="Only 1.")
    best_of: int | None = Field(default=None, ge=1, description="Only 1.")
    stop: Union[str, list[str], None] = Field(default=None, description="Stop strings (the "
                                              "text is cut before the first).")
    stream: bool | None = False
    echo: bool | None = False
    logprobs: int | None = Field(default=None, description="Not served.")
    suffix: str | None = Field(default=None, description="Not served.")
    user: str | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"]


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "softprompt"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TaskInfo(BaseModel):
    name: str
    prompt_length: int
    sha256: str
    labels: list[str] | None
    task: str | None = Field(description="The task the prompt was trained on (its sidecar).")
    backbone_fingerprint: str | None
    loaded_at: float
    max_target_length: int | None


class TaskList(BaseModel):
    tasks: list[TaskInfo]
    model: dict = Field(description="The served model: preset, hidden size, vocabulary size, "
                                    "embedding fingerprint.")


class Status(BaseModel):
    status: str
    pid: int


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail
