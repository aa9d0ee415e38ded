{
  "targets": [
    {
      "target_name": "kiln_native",
      "sources": ["copy_ranges.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
