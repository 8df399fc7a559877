"""OASIS CACAO 2.0 playbooks: load and validate, the shipped healthcare library, and the executor."""

from healthswarm.respond.playbooks.executor import RunResult, run_playbook
from healthswarm.respond.playbooks.library import LIBRARY, Library
from healthswarm.respond.playbooks.validate import Playbook, load_playbook, validate_document

__all__ = ["LIBRARY", "Library", "Playbook", "RunResult", "load_playbook", "run_playbook", "validate_document"]
