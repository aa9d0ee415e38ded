{
  "targets": [
    {
      "target_name": "kiln_native",
      "sources": ["copy_ranges.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "kiln_gemm",
      "sources": ["gemm.c"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-pthread"],
      "ldflags": ["-pthread"]
    }
  ]
}
