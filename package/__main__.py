from sglang_diffusion_mcp.server.cli import main

raise SystemExit(main())
