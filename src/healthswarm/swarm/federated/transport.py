"""Two ways to run the same Flower server loop and strategies.

* `run_in_process`: Flower's `Server` with a `SimpleClientManager` holding `LocalClientProxy`s that
  call each client object directly (Flower's own in-process path needs Ray, which we avoid). The bench
  uses it for speed: the rounds, sampling, aggregation and DP are exactly Flower's.
* `run_grpc`: the real thing on loopback. Flower's legacy gRPC server (`flwr.server.start_server`,
  deprecated since 1.13 in favour of SuperLink/SuperNode + `flwr run`, still working in 1.42) runs in
  this process; every organisation is a separate process that reads its own rows from the data files
  and connects with `flwr.client.start_client`. Only parameters cross the socket.
"""

from __future__ import annotations

import multiprocessing
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from flwr.client import Client
from flwr.common import (
    DisconnectRes,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    ReconnectIns,
)
from flwr.server import History, Server, ServerConfig
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy

from healthswarm.model.words import counted
from healthswarm.swarm.federated.screen import FederationError, ScreenedStrategy


class LocalClientProxy(ClientProxy):
    """A client in this process: Flower messages become method calls on the client object."""

    def __init__(self, cid: str, client: Client) -> None:
        super().__init__(cid)
        self.client = client

    def get_properties(self, ins: GetPropertiesIns, timeout: float | None, group_id: int | None
                       ) -> GetPropertiesRes:
        return self.client.get_properties(ins)

    def get_parameters(self, ins: GetParametersIns, timeout: float | None, group_id: int | None
                       ) -> GetParametersRes:
        return self.client.get_parameters(ins)

    def fit(self, ins: FitIns, timeout: float | None, group_id: int | None) -> FitRes:
        return self.client.fit(ins)

    def evaluate(self, ins: EvaluateIns, timeout: float | None, group_id: int | None) -> EvaluateRes:
        return self.client.evaluate(ins)

    def reconnect(self, ins: ReconnectIns, timeout: float | None, group_id: int | None) -> DisconnectRes:
        return DisconnectRes(reason="")


def run_in_process(strategy: ScreenedStrategy, clients: list[Client], rounds: int) -> History:
    manager = SimpleClientManager()
    for i, client in enumerate(clients):
        manager.register(LocalClientProxy(str(i), client))
    server = Server(client_manager=manager, strategy=strategy)
    server.set_max_workers(1)  # why: the clients share this process's cores; threads would only contend
    history, _ = server.fit(num_rounds=rounds, timeout=None)
    return history


@dataclass(frozen=True, slots=True)
class ClientLauncher:
    """What a client process needs to build its own client: a picklable factory and its argument
    (the factory reads the organisation's rows itself, in the child)."""

    factory: Callable[[object], Client]
    argument: object


def _client_main(address: str, launcher: ClientLauncher) -> None:
    from flwr.client import start_client

    warnings.filterwarnings("ignore")  # the deprecation banner of start_client, once per process
    start_client(server_address=address, client=launcher.factory(launcher.argument), insecure=True,
                 max_retries=60, max_wait_time=30.0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_grpc(strategy: ScreenedStrategy, launchers: list[ClientLauncher], rounds: int, timeout: float = 300.0
             ) -> History:
    """Flower's gRPC server here, one process per client, on 127.0.0.1; raises if a client dies."""
    from flwr.server import start_server

    address = f"127.0.0.1:{free_port()}"
    context = multiprocessing.get_context("spawn")  # why: no inherited threads or data from the server
    processes = [context.Process(target=_client_main, args=(address, launcher), daemon=True)
                 for launcher in launchers]
    for process in processes:
        process.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            history = start_server(server_address=address, config=ServerConfig(num_rounds=rounds,
                                                                               round_timeout=timeout),
                                   strategy=strategy)
        for process in processes:
            process.join(timeout=30)
        failed = [i for i, p in enumerate(processes) if p.exitcode not in (0, None)]
        if failed:
            raise FederationError(f"{counted(len(failed), 'client process', 'client processes')} exited with an error: "
                                  + ", ".join(map(str, failed)))
        return history
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
