"""Media assets: processed media that titles point at, the uploads and URL ingests that make it,
and the durable jobs that transcode and package it (with the media core, ``reelhouse.media``)."""
