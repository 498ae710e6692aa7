from decimal import Decimal

from django import forms

from policyhub.models import PolicyVersion

from .imports.schemas import SCHEMAS
from .models import GATE_THRESHOLD_FIELDS, ImportBatch, LabelingRun, QualityGates, TeacherConfig
from .pipeline.routing import DEFAULT_THRESHOLDS
from .pipeline.trust import DEFAULT_SETTINGS
from .teacher.endpoints import key_names


class ImportForm(forms.Form):
    kind = forms.ChoiceField(choices=[(kind, kind.title()) for kind in SCHEMAS])
    file = forms.FileField(help_text="CSV with a header row, or JSONL (one JSON object per line).")


class TeacherConfigForm(forms.ModelForm):
    """The API key is chosen among the names the operator configured (TEACHER_API_KEYS), never typed."""

    base_url = forms.URLField(
        required=False, assume_scheme="https", help_text="Empty: OPENAI_BASE_URL, or OpenAI itself."
    )
    api_key_name = forms.ChoiceField(
        required=False, label="API key", initial=TeacherConfig._meta.get_field("api_key_name").default,
        help_text="A key the operator configured on the workers (TEACHER_API_KEYS); its value never leaves them.",
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = key_names()
        self.fields["api_key_name"].choices = [("", "— none (heuristic) —")] + [(n, n) for n in names]
        # never echo the value: someone may have pasted a key itself where its name belongs
        self.fields["api_key_name"].error_messages["invalid_choice"] = (
            f"Not one of the API keys the operator configured ({', '.join(names) or 'none'}): give a key's name "
            "from TEACHER_API_KEYS, never the key itself."
        )

    batch_price_factor = forms.DecimalField(
        required=False, initial=Decimal("0.5"), min_value=Decimal("0.001"), max_value=1, decimal_places=3,
        help_text="Batch-mode runs pay the prices times this (the OpenAI Batch API charges half). Empty: 0.5.",
    )  # fmt: skip

    def clean_batch_price_factor(self) -> Decimal:
        value = self.cleaned_data.get("batch_price_factor")
        return Decimal("0.5") if value is None else value

    class Meta:
        model = TeacherConfig
        fields = [
            "name", "provider", "model", "base_url", "api_key_name", "temperature", "samples_per_pair", "logprobs",
            "top_logprobs", "price_input_per_mtok", "price_cached_input_per_mtok", "price_output_per_mtok",
            "batch_price_factor", "concurrency", "request_timeout", "max_attempts",
        ]  # fmt: skip


class RunForm(forms.Form):
    version = forms.ModelChoiceField(
        queryset=PolicyVersion.objects.filter(status=PolicyVersion.Status.PUBLISHED).select_related("policy"),
        label="Policy version",
    )
    config = forms.ModelChoiceField(queryset=TeacherConfig.objects.all(), label="Teacher config")
    judge = forms.ModelChoiceField(
        queryset=TeacherConfig.objects.filter(provider=TeacherConfig.Provider.OPENAI), required=False,
        empty_label="No judge", label="Judge (optional)",
        help_text="A second LLM config that checks every answer: grounded in the pair, consistent with the cited "
        "rules (judge_verdict). Its requests are paid too: see the plan.",
    )  # fmt: skip
    import_batch = forms.ModelChoiceField(
        queryset=ImportBatch.objects.filter(kind=ImportBatch.Kind.PAIRS, status=ImportBatch.Status.SUCCEEDED),
        required=False,
        empty_label="All pairs",
        label="Pairs",
    )
    limit = forms.IntegerField(required=False, min_value=1, help_text="Only the first N pairs (optional).")
    min_vote_share = forms.FloatField(
        initial=DEFAULT_THRESHOLDS["min_vote_share"], min_value=0, max_value=1,
        help_text="Below this share of agreeing samples: self_disagreement.",
    )  # fmt: skip
    min_confidence = forms.FloatField(
        initial=DEFAULT_THRESHOLDS["min_confidence"], min_value=0, max_value=1,
        help_text="Below this probability of the label: low_confidence.",
    )  # fmt: skip
    scan_for_injection = forms.BooleanField(
        initial=True, required=False, label="Review pairs whose text is aimed at a model",
        help_text="Member or job text that gives the model or the labeler instructions: suspected_injection.",
    )  # fmt: skip
    require_rule_citation = forms.BooleanField(
        initial=True, required=False, label="An answer must cite a rule",
        help_text="An LLM answer citing none of the policy's rules fails no_rule_cited (the heuristic cites none).",
    )  # fmt: skip
    chunk_size = forms.IntegerField(initial=500, min_value=1, max_value=10_000)
    reviewers_per_item = forms.IntegerField(
        initial=1, min_value=1, max_value=3, required=False,
        help_text="Annotators who review each needs-review item (1–3); when they disagree, a policy owner decides.",
    )  # fmt: skip
    mode = forms.ChoiceField(
        choices=LabelingRun.Mode.choices, initial=LabelingRun.Mode.ONLINE, required=False,
        help_text="Batch: one OpenAI Batch API job, answered within 24 h (usually at half the price).",
    )  # fmt: skip

    def clean_reviewers_per_item(self) -> int:
        return self.cleaned_data.get("reviewers_per_item") or 1

    def clean_mode(self) -> str:
        return self.cleaned_data.get("mode") or LabelingRun.Mode.ONLINE

    def selection(self) -> dict:
        data = self.cleaned_data
        selection: dict = {"import_batch": data["import_batch"].pk} if data["import_batch"] else {"all": True}
        if data.get("limit"):
            selection["limit"] = data["limit"]
        return selection

    def checks(self) -> dict:
        return {name: self.cleaned_data[name] for name in DEFAULT_SETTINGS}

    def thresholds(self) -> dict:
        return {name: self.cleaned_data[name] for name in DEFAULT_THRESHOLDS}


class QualityGatesForm(forms.ModelForm):
    """A policy's publishing thresholds: fractions from 0 to 1 (0.8 = 80 %); an empty box turns that gate off."""

    class Meta:
        model = QualityGates
        fields = [*GATE_THRESHOLD_FIELDS, "require_red_team_run"]
        labels = {
            "min_gold_accuracy": "Minimum gold accuracy",
            "max_rule_accuracy_drop": "Largest per-rule accuracy drop vs published",
            "max_asr_injection": "Max attack success: prompt injection",
            "max_asr_protected_attribute": "Max attack success: protected attribute",
            "max_asr_irrelevant_noise": "Max attack success: irrelevant noise",
            "max_asr_hallucination_bait": "Max attack success: hallucination bait",
            "max_asr_custom": "Max attack success: custom (uploaded) variants",
            "max_flip_rate": "Max counterfactual flip rate",
            "max_hallucination_rate": "Max hallucination rate",
            "require_red_team_run": "Require a red-team run",
        }
        widgets = {
            name: forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "1"}) for name in GATE_THRESHOLD_FIELDS
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in GATE_THRESHOLD_FIELDS:
            self.fields[name].error_messages["invalid"] = "Enter a fraction from 0 to 1, e.g. 0.8, or leave it empty."

    @classmethod
    def rows(cls, gates: QualityGates) -> list[tuple[str, float | bool | None]]:
        """(label, value) of every setting, for the read-only table on the policy page."""
        return [(cls.Meta.labels[name], getattr(gates, name)) for name in cls.Meta.fields]

    def clean(self):
        cleaned = super().clean()
        for name in GATE_THRESHOLD_FIELDS:
            value = cleaned.get(name)
            if value is not None and not 0 <= value <= 1:
                self.add_error(
                    name, "A threshold is a fraction from 0 to 1 (0.8 = 80 %); leave it empty to turn it off."
                )
        return cleaned


class StudentImportForm(forms.Form):
    """A student's predictions on a built export (``labeling.services.students``)."""

    export = forms.ModelChoiceField(
        queryset=None, help_text="The export the student was trained on (its splits and labels are compared)."
    )
    student_name = forms.CharField(max_length=100, help_text="e.g. distilbert-match")
    student_version = forms.CharField(max_length=100, help_text="e.g. 2026-12-01 or v3")
    file = forms.FileField(
        help_text="CSV, JSONL or Parquet: pair_id (or member_id and job_id), label, optional p_<label> columns or a "
        "probs object, optional cited_rules."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from exports.models import DatasetExport

        self.fields["export"].queryset = DatasetExport.objects.filter(status=DatasetExport.Status.READY).select_related(
            "policy_version__policy"
        )
        self.fields["export"].label_from_instance = lambda e: (
            f"#{e.pk} {e.policy_version.policy.slug} v{e.policy_version.number} ({e.rows_total} rows, "
            f"{e.created_at:%Y-%m-%d})"
        )
