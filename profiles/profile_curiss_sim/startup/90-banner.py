# curiss simulated-STXM profile, step 90: say what is ready (interactive IPython only).
try:
    _interactive = get_ipython() is not None  # noqa: F821 (IPython only)
except NameError:  # bluesky-queueserver's worker or a plain exec: stay quiet
    _interactive = False

if _interactive:
    print(
        f"curiss profile: catalog = {CURISS_STORE!r} ({len(catalog)} runs); "  # noqa: F821
        f"RE; devices mono, stage, detector (stxm, sample: {sample.energies.size} energies x "  # noqa: F821
        f"{sample.shape[0]} x {sample.shape[1]} pixels); plans raster_scan, random_rows_scan, "  # noqa: F821
        f"riss_scan, curiss_scan, acuriss_scan, resume; load_run(catalog[uid])."
    )
