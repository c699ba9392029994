"""The published event contract: the AsyncAPI document and its compatibility gate."""

from fleet_runtime.contract.asyncapi import ContractInputs, build_document
from fleet_runtime.contract.compat import Incompatibility, incompatibilities
from fleet_runtime.contract.document import DEFAULT_PATH, current_inputs, differences, read, render
from fleet_runtime.contract.messages import channel_id

__all__ = [
    "DEFAULT_PATH",
    "ContractInputs",
    "Incompatibility",
    "build_document",
    "channel_id",
    "current_inputs",
    "differences",
    "incompatibilities",
    "read",
    "render",
]
