"""The Cloud API v2's logic without HTTP: its request translation (``request``), ComposeStatus
(``status``), ComposeMetadata (``metadata``), distributions (``distributions``), package search and
depsolve (``packages``), the compose an id names (``lookup``), request validation against its spec
(``validation``) and its error table (``errors``: the CloudRequestError all of these raise).

Used by the Cloud API's handlers (``osbuildd.api.cloud``) and by the image-builder's in-process
composer (``osbuildd.imagebuilder.local``), so both answer the same JSON for the same question.
"""
