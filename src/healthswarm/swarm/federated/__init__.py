"""Federated learning of the flow detector with Flower: organisations train on their own rows and share
only model parameters.

    model.py       the numpy MLP (parameters = list of arrays) and its fixed feature encoding
    client.py      FlowClient, a Flower NumPyClient over one organisation's rows
    partition.py   per-organisation partitions (Dirichlet label skew, or by host/device)
    strategies.py  FedAvg, trimmed mean with server momentum and Krum, screened and optionally DP-wrapped
    screen.py      ScreenedStrategy: refuses NaN/misshapen updates with counted reasons
    poison.py      label-flipping and model-replacement attackers
    dp.py          Flower's central-DP wrapper and the RDP accountant for the ε spent
    transport.py   Flower's Server in process, or real gRPC with one process per organisation
    run.py         orchestration: `run_federated(FederatedConfig) -> FederatedReport`

Importing this package needs `flwr` (an optional dependency).
"""
