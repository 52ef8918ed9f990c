{
  "targets": [{
    "target_name": "viva_native",
    "sources": ["viva_native.c"],
    "cflags": ["-O2", "-Wall"]
  }]
}
