"""The Email API poller: lists emails and operations, publishes transitions webhooks may have missed."""
