"""streams.yaml: the declared JetStream streams and durable consumers, and the tool applying it."""

from fleet_runtime.topology.apply import RecreateRefused, ServerRefused, apply
from fleet_runtime.topology.connection import ServerUnreachable, default_url, open_jetstream
from fleet_runtime.topology.diff import FieldChange
from fleet_runtime.topology.loader import load_topology, parse_topology
from fleet_runtime.topology.model import (
    ConsumerSpec,
    Durable,
    PartitionSpec,
    StreamSpec,
    Topology,
    durable_name,
)
from fleet_runtime.topology.plan import Action, Change, Plan, plan
from fleet_runtime.topology.problems import Problem, TopologyInvalid

__all__ = [
    "Action",
    "Change",
    "ConsumerSpec",
    "Durable",
    "FieldChange",
    "PartitionSpec",
    "Plan",
    "Problem",
    "RecreateRefused",
    "ServerRefused",
    "ServerUnreachable",
    "StreamSpec",
    "Topology",
    "TopologyInvalid",
    "apply",
    "default_url",
    "durable_name",
    "load_topology",
    "open_jetstream",
    "parse_topology",
    "plan",
]
