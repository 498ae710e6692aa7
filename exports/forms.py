from django import forms

from labeling.models import Candidate, LabelingRun
from policyhub.models import PolicyVersion


class RunChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, run: LabelingRun) -> str:
        version = run.policy_version
        return f"Run #{run.pk} · {version.policy.slug} v{version.number} · {run.teacher_config.name} ({run.status})"


class ExportForm(forms.Form):
    version = forms.ModelChoiceField(
        queryset=PolicyVersion.objects.exclude(status=PolicyVersion.Status.DRAFT).select_related("policy"),
        label="Policy version",
    )
    runs = RunChoices(
        queryset=LabelingRun.objects.filter(purpose=LabelingRun.Purpose.LABELING)
        .select_related("policy_version__policy", "teacher_config")
        .order_by("-pk"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every run of the version.",
    )
    approved_only = forms.BooleanField(initial=True, required=False, label="Approved labels only")
    human_only = forms.BooleanField(required=False, label="Human-reviewed only")
    gold_only = forms.BooleanField(required=False, label="Gold set only")
    reasons = forms.MultipleChoiceField(
        choices=[(r, r) for r in Candidate.REASONS], required=False, widget=forms.CheckboxSelectMultiple,
        label="Routed to review for", help_text="None ticked: any routing.",
    )  # fmt: skip
    min_confidence = forms.FloatField(required=False, min_value=0, max_value=1, label="Minimum teacher confidence")
    min_agreement = forms.FloatField(required=False, min_value=0, max_value=1, label="Minimum agreement")
    include_flagged = forms.BooleanField(
        required=False, label="Include flagged items no human approved",
        help_text="Failed a trust check or holds suspected injection; left out by default.",
    )  # fmt: skip
    train = forms.FloatField(initial=0.8, min_value=0, max_value=1)
    validation = forms.FloatField(initial=0.1, min_value=0, max_value=1)
    test = forms.FloatField(initial=0.1, min_value=0, max_value=1)
    seed = forms.IntegerField(initial=0)
    group_by_job = forms.BooleanField(required=False, label="Also keep each job in one split")

    def filters(self) -> dict:
        data = self.cleaned_data
        return {key: data[key] for key in ("approved_only", "human_only", "gold_only", "reasons", "min_confidence",
                                           "min_agreement", "include_flagged")}  # fmt: skip

    def split(self) -> dict:
        return {key: self.cleaned_data[key] for key in ("train", "validation", "test", "seed", "group_by_job")}
