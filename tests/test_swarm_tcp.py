"""The loopback transport refuses oversized and cut-short frames and keeps serving; the CLI's bad-input paths."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
from pathlib import Path

from healthswarm.swarm.consortium import free_ports
from healthswarm.swarm.tcp import TcpTransport


def test_oversize_truncated_then_a_good_frame() -> None:
    port = free_ports(1)[0]
    frames: list[bytes] = []
    drops: list[str] = []

    async def scenario() -> None:
        server = TcpTransport("127.0.0.1", port, frames.append, lambda d: drops.append(d.reason), max_frame=1000,
                              timeout=0.5)
        await server.start()
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(struct.pack(">I", 10**9))           # announces a gigabyte
            await w.drain()
            w.close()
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(struct.pack(">I", 100) + b"x" * 10)  # stops mid-transfer
            await w.drain()
            w.close()
            client = TcpTransport("127.0.0.1", 0, frames.append, lambda d: None, max_frame=1000)
            client.send(f"127.0.0.1:{port}", b"hello")
            client.send(f"127.0.0.1:{free_ports(1)[0]}", b"nobody listens")
            for _ in range(50):
                if frames and client.send_failures:
                    break
                await asyncio.sleep(0.05)
            assert client.send_failures == 1
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert sorted(drops) == ["oversize", "truncated"] and frames == [b"hello"]


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "node.toml"
    bad.write_text('workspace = "ws"\nname = "a"\nlisten = "nowhere"\n', encoding="utf-8")
    for args in (["run"], ["status"]):
        result = subprocess.run([sys.executable, "-m", "healthswarm", "node", *args, "--config", str(bad)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and result.stderr.strip().startswith("error:")
        assert "listen 'nowhere': expected host:port" in result.stderr
    good = tmp_path / "good.toml"
    good.write_text('workspace = "ws"\nname = "a"\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "healthswarm", "node", "status", "--config", str(good)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no status yet" in result.stderr
