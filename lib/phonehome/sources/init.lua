-- sources/: what a script reads from the product it reports on (SQL, HTTP, Prometheus metrics,
-- config files, process, files); fetched by the host, results handed to field functions.
return {}
