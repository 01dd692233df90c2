"""Why a signature could not be resolved, in words the supporter can act on."""

REASONS = {
    "invalid_postcode": "That postcode is not a real UK postcode. Check it and sign again.",
    "terminated_postcode": "That postcode is no longer in use. Sign again with your current postcode.",
    "no_westminster_mp": "Addresses there have no MP at Westminster, so we cannot send this letter.",
    "no_contact": "Your MP does not publish an email address. You could write to them by post.",
    "unknown_postcode": "We could not find that postcode. Check it and sign again.",
}
