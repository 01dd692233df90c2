"""Why a signature could not be resolved, in words the supporter can act on.

Stored in English; the thank-you page translates them when it shows them.
"""

from shared.i18n_markers import N_

REASONS = {
    "invalid_postcode": N_("That postcode is not a real UK postcode. Check it and sign again."),
    "terminated_postcode": N_(
        "That postcode is no longer in use. Sign again with your current postcode."
    ),
    "no_westminster_mp": N_(
        "Addresses there have no MP at Westminster, so we cannot send this letter."
    ),
    "no_contact": N_("Your MP does not publish an email address. You could write to them by post."),
    "unknown_postcode": N_("We could not find that postcode. Check it and sign again."),
}

# The reasons a new postcode fixes: the thank-you page offers "sign again" for these only.
POSTCODE_REASONS = frozenset(("invalid_postcode", "terminated_postcode", "unknown_postcode"))
