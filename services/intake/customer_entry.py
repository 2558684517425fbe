"""A customer as integrators write one: in the directory file, on the directory topic,
in an import file and in ``PUT /v1/customers/{id}``. Validated the same way everywhere."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.incidents import EmailAddress, LanguageTag, OneLine
from services.intake.domain import Customer, normalise_phone


class CustomerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user_id: str = Field(min_length=1, max_length=200)
    name: OneLine = Field(min_length=1, max_length=200)
    email: EmailAddress = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    social_handles: list[str] = Field(default_factory=list, max_length=20)
    location: str | None = Field(default=None, max_length=300)
    department: str | None = Field(default=None, max_length=200)
    vip: bool = False
    hardware: list[str] = Field(default_factory=list, max_length=100)
    software: list[str] = Field(default_factory=list, max_length=100)
    language: LanguageTag = Field(default=None, max_length=35)

    @field_validator("phone", mode="before")
    @classmethod
    def _phone_is_text(cls, value: object) -> object:
        if isinstance(value, int):
            # YAML reads +442079460018 as a number; the leading + or 0 would be lost.
            raise ValueError('write the phone number in quotes, e.g. "+44 20 7946 0018"')
        return value

    def customer(self, region: str) -> Customer:
        """The directory entry; ValueError if the phone number cannot be read (in ``region``)."""
        phone = normalise_phone(self.phone, region)
        if self.phone and phone is None:
            raise ValueError(f"phone: {self.phone!r} is not a phone number (region {region})")
        return Customer(
            user_id=self.user_id,
            name=self.name,
            email=self.email,
            phone=phone,
            social_handles=tuple(self.social_handles),
            location=self.location,
            department=self.department,
            vip=self.vip,
            hardware=tuple(self.hardware),
            software=tuple(self.software),
            language=self.language,
        )
