"""HTTP clients for the teacher that never follow a redirect and re-check, at every connection, each address
the host resolves to (DNS may change between the worker's check and a connection)."""

import functools
import socket
import ssl

import aiohttp
import httpcore2
import httpx2
import openai
from openai._vendor.httpx_aiohttp.transport import AiohttpTransport  # the SDK's own aiohttp transport

from .endpoints import check_addresses, resolve


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


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context of every teacher connection in this process: loading the CA bundle costs 50–80 ms of CPU,
    which a chunk used to pay before its first request (an ``SSLContext`` serves any number of connections and
    threads; nothing changes it after it is made)."""
    return httpx2.create_ssl_context()


def async_http_client(*, timeout: float, limit: int) -> httpx2.AsyncClient:
    """The SDK's aiohttp client (``openai[aiohttp]``) on a connector with :class:`CheckedResolver`."""
    ssl_context = tls_context()

    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=CheckedResolver(), ssl=ssl_context, limit=limit)
        )

    return openai.DefaultAioHttpClient(  # the transport is given the context too, or it loads the CA bundle again
        timeout=timeout, follow_redirects=False, transport=AiohttpTransport(client=session, verify=ssl_context)
    )


class CheckedBackend(httpcore2.SyncBackend):
    """Resolves the host itself, refuses (EndpointRefused) when any address is refused, then connects to the
    checked addresses in turn; TLS still verifies the host name (httpcore passes it as the server name)."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = resolve(host, port)
        check_addresses(host, addresses)
        error: Exception = httpcore2.ConnectError(f"{host} does not resolve")
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore2.ConnectError as exc:
                error = exc
        raise error


class CheckedTransport(httpx2.HTTPTransport):
    """httpx's own transport on a connection pool with :class:`CheckedBackend` (httpx takes no network backend,
    so the pool it built is replaced; ``_pool`` is the attribute its request handling uses)."""

    def __init__(self) -> None:
        super().__init__()
        self._pool = httpcore2.ConnectionPool(ssl_context=tls_context(), network_backend=CheckedBackend())


def sync_http_client(*, timeout: float) -> httpx2.Client:
    return openai.DefaultHttpxClient(timeout=timeout, follow_redirects=False, transport=CheckedTransport())
