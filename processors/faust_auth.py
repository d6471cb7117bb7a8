"""TLS and SASL for Faust (aiokafka) from the Kafka settings, for every Faust app of the
project (the processor worker, the standalone alert worker)."""

from __future__ import annotations

import ssl

import faust

from newswire.settings import KafkaSettings


def faust_credentials(kafka: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    needs_tls = kafka.security_protocol in ("SSL", "SASL_SSL")
    context = None
    if needs_tls:
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile:
            context.load_cert_chain(str(kafka.ssl_certfile),
                                    str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None)
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
