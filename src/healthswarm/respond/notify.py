"""Notifying people: a JSON webhook (httpx) or an e-mail through the configured SMTP relay (smtplib)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from healthswarm.errors import HealthswarmError


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    mail_from: str = "healthswarm@localhost"
    mail_to: tuple[str, ...] = ()
    timeout: float = 10.0


def send_webhook(config: NotifyConfig, payload: dict[str, Any]) -> str:
    if not config.webhook_url:
        raise HealthswarmError("no webhook configured (NotifyConfig.webhook_url)")
    try:
        response = httpx.post(config.webhook_url, json=payload, timeout=config.timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise HealthswarmError(f"webhook {config.webhook_url}: {exc}") from exc
    return f"webhook {config.webhook_url}: HTTP {response.status_code}"


def send_email(config: NotifyConfig, subject: str, body: str) -> str:
    if not config.smtp_host or not config.mail_to:
        raise HealthswarmError("no SMTP relay or recipients configured (NotifyConfig.smtp_host, mail_to)")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = config.mail_from, ", ".join(config.mail_to), subject
    message.set_content(body)
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout) as smtp:
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise HealthswarmError(f"SMTP relay {config.smtp_host}:{config.smtp_port}: {exc}") from exc
    return f"e-mail to {', '.join(config.mail_to)} via {config.smtp_host}:{config.smtp_port}"
