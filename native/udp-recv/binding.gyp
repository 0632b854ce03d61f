{
  "targets": [
    {
      "target_name": "udp_recv",
      "sources": ["udp_recv.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", { "type": "none" }]]
    }
  ]
}
