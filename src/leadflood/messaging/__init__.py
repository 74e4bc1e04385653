"""Messaging: messages, conversations, mailboxes, suppressions and the channels that send
(email over SMTP, WhatsApp/SMS through Trengo). Sequences and the inbox build on it."""
