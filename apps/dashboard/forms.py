from django import forms


class ActivityFilterForm(forms.Form):
    """Filter the activity list by one of the event types the user actually has."""

    event_type = forms.ChoiceField(
        required=False,
        error_messages={
            "invalid_choice": "“%(value)s” is not an event type in your activity. "
            "Pick one from the list."
        },
    )

    def __init__(self, *args, event_types: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["event_type"].choices = [("", "All events")] + [
            (event_type, event_type) for event_type in event_types
        ]
