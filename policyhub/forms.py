"""Forms of the policy editor. Validation of content lives in the model/service; these forms only parse."""

from django import forms

from .models import ContentError, Policy


class PolicyCreateForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = ["slug", "name", "task_description"]
        widgets = {"task_description": forms.Textarea(attrs={"rows": 3})}


class DraftForm(forms.Form):
    revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    # strip=False: leading indentation and the final newline are markdown; saving unchanged must not change the text.
    body = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 16, "class": "mono", "id": "id_body"})
    )

    label_mapping = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "placeholder": "old_key -> new_key"}),
        help_text="One line per changed label: old -> new (rename; several old to one new: merge) or "
        "old -> new1, new2 (split). Labels kept under their key need no line.",
    )

    def clean_body(self) -> str:
        """Browsers send textarea newlines as CRLF; store LF like every other path (API, services, seed)."""
        return self.cleaned_data["body"].replace("\r\n", "\n")

    def clean_label_mapping(self) -> dict[str, list[str]]:
        return parse_label_mapping(self.cleaned_data["label_mapping"])


def parse_label_mapping(text: str) -> dict[str, list[str]]:
    """``old -> new`` / ``old -> new1, new2`` lines (``→`` works too) as ``{old: [new, …]}``."""
    mapping: dict[str, list[str]] = {}
    errors = []
    for number, line in enumerate(text.replace("→", "->").splitlines(), start=1):
        if not line.strip():
            continue
        old, arrow, new = line.partition("->")
        old, new_keys = old.strip(), [key.strip() for key in new.split(",") if key.strip()]
        if not arrow or not old or not new_keys:
            errors.append(f"Line {number}: write old_key -> new_key (or old_key -> new_a, new_b for a split).")
        elif old in mapping:
            errors.append(f"Line {number}: {old} is mapped twice; put its new labels on one line.")
        else:
            mapping[old] = new_keys
    if errors:
        raise forms.ValidationError(errors)
    return mapping


def format_label_mapping(mapping: dict[str, list[str]]) -> str:
    return "\n".join(f"{old} -> {', '.join(new)}" for old, new in mapping.items())


class LabelForm(forms.Form):
    key = forms.CharField(max_length=64, widget=forms.TextInput(attrs={"placeholder": "strong_match"}))
    title = forms.CharField(max_length=200, required=False)
    definition = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class RuleForm(forms.Form):
    id = forms.CharField(
        max_length=12,
        required=False,
        label="ID",
        widget=forms.TextInput(attrs={"placeholder": "new", "size": 5}),
        help_text="Leave empty for a new rule: it gets the next free ID.",
    )
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    positive_examples = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="One example per line."
    )
    negative_examples = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="One example per line."
    )


LabelFormSet = forms.formset_factory(LabelForm, extra=0, can_delete=True)
RuleFormSet = forms.formset_factory(RuleForm, extra=0, can_delete=True)


class DraftEditor:
    """The draft form with its label and rule formsets, bound or initial, plus mapping of content errors."""

    def __init__(self, data=None, *, version=None):
        self.section_errors: dict[str, list[str]] = {}
        initial = None
        if version is not None:
            initial = {
                "revision": version.revision,
                "body": version.body,
                "label_mapping": format_label_mapping(version.label_mapping),
            }
        self.draft = DraftForm(data, initial=initial)
        self.labels = LabelFormSet(data, prefix="labels", initial=None if data else (version.labels if version else []))
        self.rules = RuleFormSet(
            data,
            prefix="rules",
            initial=None
            if data
            else [
                {
                    **rule,
                    "positive_examples": "\n".join(rule.get("positive_examples", [])),
                    "negative_examples": "\n".join(rule.get("negative_examples", [])),
                }
                for rule in (version.rules if version else [])
            ],
        )

    def is_valid(self) -> bool:
        return all([self.draft.is_valid(), self.labels.is_valid(), self.rules.is_valid()])

    @staticmethod
    def _kept(formset) -> list[forms.Form]:
        return [form for form in formset.forms if not form.cleaned_data.get("DELETE")]

    def content(self) -> dict:
        """Cleaned content in the order shown, deleted rows dropped."""
        return {
            "revision": self.draft.cleaned_data["revision"],
            "body": self.draft.cleaned_data["body"],
            "label_mapping": self.draft.cleaned_data["label_mapping"],
            "labels": [
                {k: form.cleaned_data[k] for k in ("key", "title", "definition")} for form in self._kept(self.labels)
            ],
            "rules": [
                {k: form.cleaned_data[k] for k in ("id", "text", "positive_examples", "negative_examples")}
                for form in self._kept(self.rules)
            ],
        }

    def add_content_errors(self, errors: list[ContentError]) -> None:
        """Show each content error by its field in the row it belongs to."""
        for error in errors:
            if error.section == "label_mapping":
                self.section_errors.setdefault(error.section, []).append(str(error))
                continue
            formset = self.labels if error.section == "labels" else self.rules
            kept = self._kept(formset)
            if error.index is not None and error.index < len(kept) and error.field in kept[error.index].fields:
                kept[error.index].add_error(error.field, error.message)
            else:
                self.section_errors.setdefault(error.section, []).append(str(error))
