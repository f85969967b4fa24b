"""Scripted models for the wrapper tests."""

from cadre_core.models.test import FunctionModel


def scripted(*replies, model_name="a"):
    """A model answering with each reply in turn (one reply per request); an exception in the list is raised."""
    queue = list(replies)

    def fn(request, model):
        reply = queue.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    return FunctionModel(fn, model_name=model_name)


def raising(exc):
    """A model that raises `exc` on every request."""

    def fn(request, model):
        raise exc

    return FunctionModel(fn)
