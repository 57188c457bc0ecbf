# curiss simulated-STXM profile, step 90: say what is ready (interactive IPython only).
if _interactive_ipython():  # noqa: F821 (10-run-engine.py); not in the queueserver's worker
    print(
        f"curiss profile: catalog = {CURISS_STORE!r} ({len(catalog)} runs); "  # noqa: F821
        f"RE; devices mono, stage, detector (stxm, sample: {sample.energies.size} energies x "  # noqa: F821
        f"{sample.shape[0]} x {sample.shape[1]} pixels); plans raster_scan, random_rows_scan, "  # noqa: F821
        f"riss_scan, curiss_scan, acuriss_scan, resume; load_run(catalog[uid])."
    )
