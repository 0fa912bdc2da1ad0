"""Webhooks reach public addresses only: checked when saved, checked again and pinned when delivered."""
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings as hypothesis_settings, strategies as st

from audit.models import OutboxEntry
from config import outbound
from flows.models import WebhookDelivery, WebhookEndpoint
from flows.tasks import deliver_webhook
from flows.webhooks import DeliveryFailed, deliver

pytestmark = pytest.mark.django_db
PUBLIC = "93.184.215.14"
SECRET = "s" * 16


class Hosts:
    """A hosts file in front of the real resolver: each name answers its next list of addresses
    (the last one sticks), the way a name being rebound answers differently from one query to the next."""

    def __init__(self, real):
        self.real, self.answers = real, {}

    def set(self, name, *answers):
        self.answers[name] = [list(a) if isinstance(a, (list, tuple)) else [a] for a in answers]

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        answers = self.answers.get(host.rstrip(".") if isinstance(host, str) else host)
        if answers is None:
            return self.real(host, port, family, type, proto, flags)
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]


@pytest.fixture
def hosts(monkeypatch):
    fake = Hosts(socket.getaddrinfo)
    fake.set("hooks.example.com", PUBLIC)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.received.append((self.path, dict(self.headers)))
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(self.server.answer)
        if self.server.answer == 302:
            self.send_header("Location", self.server.location)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def listen():
    """Start receivers on loopback addresses; each records what it was sent."""
    servers = []

    def start(address="127.0.0.1", port=0, answer=204, location="", tls=None):
        server = HTTPServer((address, port), Receiver)
        server.received, server.answer, server.location = [], answer, location
        if tls:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def create(api, url):
    return api.post("/api/v1/webhooks/", {"url": url, "secret": SECRET}, format="json")


def deliver_to(org, url):
    """One delivery attempt, as a worker makes it (a failure is left pending for the task's retry)."""
    endpoint = WebhookEndpoint.objects.create(organization=org, url=url, secret=SECRET)
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, body='{"event": "flow.violation"}')
    with contextlib.suppress(DeliveryFailed):
        deliver(delivery.pk)
    delivery.refresh_from_db()
    return delivery


INSIDE = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://localhost:6379/", "http://[::1]:6379/", "http://127.0.0.1/", "http://10.0.0.1/",
    "http://172.16.0.1/", "http://192.168.1.1/", "http://100.64.0.1/",  # carrier-grade NAT
    "http://0.0.0.0/", "http://[::]/", "http://224.0.0.1/", "http://[ff02::1]/", "http://[ff0e::1]/",
    "http://240.0.0.1/", "http://255.255.255.255/", "http://[fe80::1]/", "http://[fd00::1]/", "http://[fec0::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped
    "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[64:ff9b:1::1]/",  # NAT64
    "http://[::127.0.0.1]/", "http://[2002:7f00:1::1]/", "http://[2001:db8::1]/",  # IPv4-compatible, 6to4, docs
    "http://2130706433/", "http://0x7f.1/", "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/",
    "http://017700000001/", "http://127.0.0.1./", "http://localhost./", "http://LOCALHOST/",
    "http://ⓛocalhost/", "http://１２７.０.０.１/",  # IDNA maps both to loopback
    "http://[fe80::1%25eth0]/",  # a zone id
    "http://user:pass@hooks.example.com/", "http://token@hooks.example.com/", "http://@hooks.example.com/",
    "http://hooks.example.com:22/", "http://hooks.example.com:25/", "http://hooks.example.com:0/",
    "http://hooks.example.com:70000/", "ftp://hooks.example.com/", "file:///etc/passwd", "gopher://127.0.0.1/",
    "http:///x", "http://hooks.example.com/a b", "http://hooks.example.com/\nx", "http://hooks.example.com/é",
    "http://%6c%6fcalhost/", "http://internal.example.com/", "http://mixed.example.com/",
]


@pytest.mark.parametrize("url", INSIDE)
def test_a_webhook_aimed_inside_the_network_is_refused_and_nothing_is_written(api, org, hosts, url):
    # given: names an attacker controls, resolving inside
    hosts.set("internal.example.com", "127.0.0.1")
    hosts.set("mixed.example.com", [PUBLIC, "10.0.0.5"])  # every address counts, not the first
    outbox = OutboxEntry.objects.count()

    response = create(api, url)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["url"]
    assert not WebhookEndpoint.objects.exists() and OutboxEntry.objects.count() == outbox


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "http://hooks.example.com:8080/x?a=1",
                                 "https://HOOKS.example.com.:443/", "https://[2606:4700:4700::1111]:8443/",
                                 "https://93.184.215.14/", "https://bücher.example/hook"])
def test_a_webhook_on_a_public_address_is_saved_as_given(api, org, hosts, url):
    hosts.set("xn--bcher-kva.example", PUBLIC)
    response = create(api, url)
    assert response.status_code == 201, response.content
    assert response.json()["url"] == url


def test_a_webhook_url_changed_to_an_inside_address_is_refused_and_the_old_one_kept(api, org, hosts):
    created = create(api, "https://hooks.example.com/x").json()
    response = api.patch(f"/api/v1/webhooks/{created['id']}/", {"url": "http://169.254.169.254/"}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "url"
    assert WebhookEndpoint.objects.get().url == "https://hooks.example.com/x"


def test_production_takes_https_webhooks_only(api, org, hosts, settings):
    settings.WEBHOOK_HTTPS_ONLY = True
    refused = create(api, "http://hooks.example.com/x")
    assert refused.status_code == 400 and "https" in refused.json()["errors"][0]["detail"]
    assert create(api, "https://hooks.example.com/x").status_code == 201


def test_credentials_in_a_stored_url_are_never_shown(api, org):
    # given: an endpoint saved before URLs with credentials were refused
    endpoint = WebhookEndpoint.objects.create(organization=org, url="https://user:pass@hooks.example.com/x",
                                              secret=SECRET)
    listed = api.get("/api/v1/webhooks/").content.decode()
    detail = api.get(f"/api/v1/webhooks/{endpoint.pk}/").json()
    assert "pass" not in listed and "user" not in listed
    assert detail["url"] == "https://hooks.example.com/x"


def test_a_delivery_to_a_name_that_now_resolves_inside_is_refused_recorded_failed_and_not_sent(
        api, org, hosts, listen):
    # given: a name public when saved, rebound to loopback where something listens
    receiver = listen()
    hosts.set("rebound.example.com", PUBLIC)
    created = create(api, f"http://rebound.example.com:{receiver.server_port}/hook")
    assert created.status_code == 201
    hosts.set("rebound.example.com", "127.0.0.1")
    delivery = WebhookDelivery.objects.create(endpoint=WebhookEndpoint.objects.get(), body="{}")

    # when
    result = deliver_webhook.apply(args=(delivery.pk,)).get()

    # then: nothing sent, and the delivery says why rather than waiting for retries
    delivery.refresh_from_db()
    assert result is False and receiver.received == []
    assert delivery.status == "failed" and delivery.attempts == 1 and "public" in delivery.last_error


def test_a_delivery_connects_to_the_address_it_checked_not_to_a_second_answer(org, hosts, listen, settings):
    # given: an allowed name whose first answer is checked, and whose next answer points elsewhere
    settings.WEBHOOK_ALLOWED_HOSTS = ["receiver"]
    checked = listen("127.0.0.1")
    elsewhere = listen("127.0.0.2", port=checked.server_port)
    hosts.set("receiver", "127.0.0.1", "127.0.0.2")

    delivery = deliver_to(org, f"http://receiver:{checked.server_port}/hook")

    assert delivery.status == "delivered" and elsewhere.received == []
    (path, headers), = checked.received
    assert path == "/hook" and headers["Host"] == f"receiver:{checked.server_port}"


def test_redirects_from_a_webhook_are_not_followed(org, listen, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    target = listen()
    redirecting = listen(answer=302, location=f"http://127.0.0.1:{target.server_port}/inside")

    delivery = deliver_to(org, f"http://127.0.0.1:{redirecting.server_port}/hook")

    assert len(redirecting.received) == 1 and target.received == []
    assert delivery.status == "pending" and "302" in delivery.last_error


def test_the_allow_list_admits_a_named_internal_host(api, org, hosts, listen, settings):
    receiver = listen()
    hosts.set("receiver.internal", "127.0.0.1")
    url = f"http://receiver.internal:{receiver.server_port}/hook"
    assert create(api, url).status_code == 400  # not without the setting

    settings.WEBHOOK_ALLOWED_HOSTS = ["Receiver.Internal."]
    assert create(api, url).status_code == 201
    delivery = WebhookDelivery.objects.create(endpoint=WebhookEndpoint.objects.get(), body="{}")
    assert deliver_webhook.apply(args=(delivery.pk,)).get() is True
    assert [path for path, _ in receiver.received] == ["/hook"]


def test_a_single_label_on_premise_host_can_be_allowed(api, org, hosts, settings):
    hosts.set("receiver", "10.1.2.3")
    settings.WEBHOOK_ALLOWED_HOSTS = ["receiver"]
    assert create(api, "http://receiver:8000/hook").status_code == 201


def _certificate(name, issuer=None, issuer_key=None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1)))
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture
def tls(tmp_path, monkeypatch):
    """A private CA the delivery trusts, and a server context holding a certificate for a given name."""
    ca_key, ca = _certificate("Test CA")
    trusted = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    monkeypatch.setattr(outbound, "tls_context", lambda: trusted)

    def server_context(name):
        key, certificate = _certificate(name, ca.subject, ca_key)
        (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        return context

    return server_context


def test_https_to_the_pinned_address_still_verifies_the_certificate_of_the_name(org, hosts, listen, tls, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.internal"]
    hosts.set("hooks.internal", "127.0.0.1")
    genuine = listen(tls=tls("hooks.internal"))
    impostor = listen(tls=tls("other.internal"))

    assert deliver_to(org, f"https://hooks.internal:{genuine.server_port}/hook").status == "delivered"
    refused = deliver_to(org, f"https://hooks.internal:{impostor.server_port}/hook")

    assert len(genuine.received) == 1 and impostor.received == []
    assert refused.status == "pending" and "certificate" in refused.last_error.lower()


@given(st.one_of(st.text(), st.builds("{}://{}{}/{}".format, st.sampled_from(["http", "https", "HTTP", "ftp"]),
                                      st.text(max_size=40), st.sampled_from(["", ":80", ":8443", ":x", ":-1"]),
                                      st.text(max_size=10))))
@hypothesis_settings(max_examples=500, deadline=None, derandomize=True, database=None)
def test_any_url_is_either_a_checked_target_or_a_refusal_never_an_error(url):
    def resolver(host, port, *args, **kwargs):  # no name resolves: nothing here leaves the machine
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with mock.patch.object(socket, "getaddrinfo", resolver):
        try:
            target = outbound.check(url)
        except outbound.RefusedTarget:
            return
    assert all(outbound.is_public(ipaddress.ip_address(a)) for a in target.addresses)
