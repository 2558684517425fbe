"""What a channel reports, and what intake makes of it.

``incident.reported`` is what every channel adapter and every integration puts
on the intake topic. ``incident.identified`` is the same incident after intake
has identified the customer and filled in what it knows: it is what the ticket
service opens a ticket from.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, field_validator, model_validator

from contracts.envelope import Envelope, Payload
from contracts.text import email_address, email_address_or_none, language_tag, one_line

# A line of text that ends up in a mail header (a subject, a name): CR, LF, TAB, every other
# C0/C1 control character and U+2028/2029 fold to single spaces, so no channel and no
# integration publishing straight onto a topic can carry a header break in it.
OneLine = Annotated[str, BeforeValidator(one_line)]
# An e-mail address as email-validator reads it (syntax only, no DNS), or none (blank is none): anything else is
# refused, so no address can carry a header break into the To: of a mail.
EmailAddress = Annotated[str | None, BeforeValidator(email_address)]
# BCP 47 (RFC 5646), well-formed, its subtags in their conventional case ('de', 'de-CH', 'zh-Hant-TW'), or none.
LanguageTag = Annotated[str | None, BeforeValidator(language_tag)]


class Channel(StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    SOCIAL = "social"
    MOBILE = "mobile"
    PHONE = "phone"
    WEB = "web"
    INTEGRATION = "integration"


Level = Literal["high", "medium", "low"]


class ContactDetails(Payload):
    """How the customer identified themselves, as the channel saw it."""

    user_id: str | None = Field(default=None, max_length=200)
    email: EmailAddress = Field(
        default=None, max_length=320, description="A valid address (syntax checked, no DNS); blank means none."
    )
    phone: str | None = Field(default=None, max_length=64)
    social_handle: str | None = Field(default=None, max_length=200)
    name: OneLine | None = Field(default=None, max_length=200, description="Line breaks and controls fold to spaces.")


class Attachment(Payload):
    """What is known of a file the customer sent with the contact (the content itself is not carried)."""

    filename: str | None = Field(default=None, max_length=300)
    content_type: str = Field(max_length=200, description="MIME type, e.g. 'image/png'.")
    size_bytes: int | None = Field(default=None, ge=0, description="Size of the decoded content; null when the channel does not say.")


class IncidentReportedData(Payload):
    channel: Channel
    channel_message_id: str = Field(
        min_length=1,
        max_length=200,
        description="The channel's own id of this contact; the same id delivered twice opens one ticket.",
    )
    received_at: AwareDatetime = Field(description="When the channel received the contact (time of call).")
    contact: ContactDetails = Field(default_factory=ContactDetails)
    subject: OneLine = Field(
        min_length=1, max_length=300, description="One line: line breaks, tabs and other controls fold to spaces."
    )
    description: str = Field(default="", max_length=100_000)
    components: list[str] = Field(default_factory=list, max_length=50, description="Components involved.")
    impact: Level | None = Field(default=None, description="The reporter's view of the business impact.")
    urgency: Level | None = Field(default=None, description="The reporter's view of the urgency.")
    attachments: list[Attachment] = Field(
        default_factory=list, max_length=100, description="Files sent with the contact (metadata only)."
    )
    reply_to_number: str | None = Field(
        default=None,
        max_length=30,
        description=(
            "Number of the ticket this contact answers (from the subject, mail threading, the chat "
            "conversation...). When that ticket is open and the customer's, the contact is recorded on it "
            "as a customer reply instead of opening a new ticket."
        ),
    )
    contact_verified: bool = Field(
        default=True,
        description=(
            "Whether the channel vouches for who the contact is: a signed-in customer of an integration, a sender "
            "the provider signs for (Twilio, Meta), a mail whose receiving relay reports DMARC passed. False (the "
            "chat widget, an unauthenticated mail, a public form): the contact's user id, address and number are "
            "claims; intake keeps them as unverified contact data and never identifies a directory customer by them."
        ),
    )
    language: LanguageTag = Field(
        default=None,
        max_length=35,
        description="The language the customer chose or wrote in, as the channel says (BCP 47, e.g. 'de', 'de-CH').",
    )

    @property
    def partition_key(self) -> str:
        return f"{self.channel.value}:{self.channel_message_id}"


class IncidentReported(Envelope[IncidentReportedData]):
    """A channel or an integration reports an incident (intake topic)."""

    type: Literal["incident.reported"] = "incident.reported"
    schema_version: Literal[1] = 1


class CustomerProfile(Payload):
    """Everything known of the customer, filled in before an agent sees the ticket."""

    identified: bool = Field(description="False when no directory entry matched; contact data is kept.")
    identified_by: Literal["user_id", "email", "phone", "social_handle"] | None = None
    customer_id: str | None = None
    verified: bool = Field(
        default=True,
        description=(
            "False when the channel could not verify who the customer is (the chat widget, a mail without a "
            "DMARC pass): the customer is not identified, and name, e-mail and phone are what the contact said. "
            "Ask them to confirm before acting on it."
        ),
    )
    claimed_user_id: str | None = Field(
        default=None,
        max_length=200,
        description="The user id an unverified contact claimed: a hint for the agent, never used to identify.",
    )
    name: OneLine | None = None
    email: str | None = Field(
        default=None,
        description="A valid address; a stored event's unusable one reads as null (it is never mailed).",
    )
    phone: str | None = Field(default=None, description="E.164 when it could be normalised.")
    social_handle: str | None = None
    location: str | None = None
    department: str | None = None
    vip: bool = False
    language: LanguageTag = Field(
        default=None,
        max_length=35,
        description=(
            "The customer's language (BCP 47, e.g. 'en', 'de-CH'), when known: from the directory, else from the "
            "channel (a mail's Accept-Language or Content-Language, Meta's locale, a chosen language)."
        ),
    )
    hardware: list[str] = Field(default_factory=list)
    software: list[str] = Field(default_factory=list)

    @field_validator("email", mode="before")
    @classmethod
    def _usable_email(cls, value: object) -> object:
        # Lenient on purpose: profiles are read back from the ticket log, where an old event may hold an
        # address earlier versions let through. It reads as none (never mailed) rather than making the
        # ticket unreadable. New profiles are built from contracts that refuse such addresses.
        return email_address_or_none(value)

    @model_validator(mode="after")
    def _identified_has_id(self) -> CustomerProfile:
        if self.identified and not self.customer_id:
            raise ValueError("an identified customer needs a customer_id")
        if self.identified and not self.verified:
            raise ValueError("an unverified contact cannot be an identified customer")
        return self


class IncidentIdentifiedData(IncidentReportedData):
    customer: CustomerProfile


class IncidentIdentified(Envelope[IncidentIdentifiedData]):
    """Intake identified the customer and enriched the incident (to the ticket service)."""

    type: Literal["incident.identified"] = "incident.identified"
    schema_version: Literal[1] = 1


class DirectoryCustomerUpdatedData(Payload):
    """A customer as the directory/CMDB integration knows them: the whole entry, replacing the last one."""

    user_id: str = Field(min_length=1, max_length=200)
    name: OneLine = Field(min_length=1, max_length=200)
    email: EmailAddress = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64, description="Any format; stored in E.164.")
    social_handles: list[str] = Field(default_factory=list, max_length=20)
    location: str | None = Field(default=None, max_length=300)
    department: str | None = Field(default=None, max_length=200)
    vip: bool = False
    hardware: list[str] = Field(default_factory=list, max_length=100, description="The customer's assets.")
    software: list[str] = Field(default_factory=list, max_length=100)
    language: LanguageTag = Field(
        default=None, max_length=35, description="The language to answer the customer in (BCP 47, e.g. 'de')."
    )


class DirectoryCustomerUpdated(Envelope[DirectoryCustomerUpdatedData]):
    """A directory integration publishes a customer (intake's directory topic, compacted, keyed by user_id)."""

    type: Literal["directory.customer_updated"] = "directory.customer_updated"
    schema_version: Literal[1] = 1


class DirectoryCustomerRemovedData(Payload):
    user_id: str = Field(min_length=1, max_length=200)


class DirectoryCustomerRemoved(Envelope[DirectoryCustomerRemovedData]):
    """A directory integration removes a customer (same topic and key as the update)."""

    type: Literal["directory.customer_removed"] = "directory.customer_removed"
    schema_version: Literal[1] = 1


DIRECTORY_MESSAGES = (DirectoryCustomerUpdated, DirectoryCustomerRemoved)
