"""HTTP clients for the teacher that never follow a redirect and re-check, at every connection, each address
the host resolves to (DNS may change between the worker's check and a connection)."""

import socket

import aiohttp
import httpx2
import openai
from openai._vendor.httpx_aiohttp.transport import AiohttpTransport  # the SDK's own aiohttp transport

from .endpoints import check_addresses


class CheckedResolver(aiohttp.abc.AbstractResolver):
    """aiohttp's threaded resolver, refusing (EndpointRefused) a host with any address the endpoint rules refuse.
    aiohttp skips the resolver for IP literals, which the worker checked before building the client."""

    def __init__(self) -> None:
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        results = await self._resolver.resolve(host, port, family)
        check_addresses(host, [result["host"] for result in results])
        return results

    async def close(self) -> None:
        await self._resolver.close()


def async_http_client(*, timeout: float, limit: int) -> httpx2.AsyncClient:
    """The SDK's aiohttp client (``openai[aiohttp]``) on a connector with :class:`CheckedResolver`."""
    ssl_context = httpx2.create_ssl_context()

    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=CheckedResolver(), ssl=ssl_context, limit=limit)
        )

    return openai.DefaultAioHttpClient(
        timeout=timeout, follow_redirects=False, transport=AiohttpTransport(client=session)
    )


def sync_http_client(*, timeout: float) -> httpx2.Client:
    return openai.DefaultHttpxClient(timeout=timeout, follow_redirects=False)
